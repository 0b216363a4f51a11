"""HTML form and list pages (``/<table>.do``, ``/<table>_list.do``), like the UI.

ServiceNow users never see the Table API: they see the account form and the
account list. These pages render what such a user would see there, from the
same metadata the instance serves: the form layout (``sys_ui_element`` rows in
position order after the base ``name``/``number`` fields), the list layout
(``sys_ui_list_element``), labels from ``sys_dictionary.column_label`` and
display values (choice labels, reference display values). They let a browser
test check that a write-back is visible where people look.

Admins only, by Basic auth; a browser without credentials gets the 401
challenge, so ``http://admin:admin@host/...`` URLs work in Chromium.
"""

from __future__ import annotations

import html
import re

from werkzeug.wrappers import Request, Response

from connector.emulator.instance import Instance
from connector.emulator.render import Renderer

FORM_RE = re.compile(r"^/([a-z0-9_]+)\.do$")
BASE_FORM_FIELDS = ("number", "name")
LIST_LIMIT = 100
_STYLE = (
    "body{font-family:sans-serif;margin:1.5em}"
    ".form-group{display:flex;margin:.3em 0}"
    "label{width:14em;color:#555}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em}"
)


def is_form_path(path: str) -> bool:
    """True for ``/<table>.do`` and ``/<table>_list.do`` (not ``/oauth_token.do``)."""
    return FORM_RE.match(path) is not None and path != "/oauth_token.do"


def serve(instance: Instance, request: Request) -> Response:
    """Render the form or list page of the table named by the path."""
    user = instance.auth.from_header(request.headers.get("Authorization"))
    if user is None:
        return Response(
            "Login required",
            status=401,
            headers={"WWW-Authenticate": 'Basic realm="ServiceNow"'},
            content_type="text/plain",
        )
    if not user.is_admin:
        return _page("Security constraints", "<p>Security constraints prevent access"
                     " to requested page</p>", status=403)  # fmt: skip

    name = FORM_RE.match(request.path).group(1)  # type: ignore[union-attr]
    if name.endswith("_list") and instance.registry.has_table(name[:-5]):
        return list_page(instance, request, name[:-5])
    if not instance.registry.has_table(name):
        return _page("Not found", f"<p>No table {html.escape(name)}</p>", status=404)
    return form_page(instance, request, name)


def layout(instance: Instance, layout_table: str, table: str) -> list[str]:
    """Elements of a form or list layout, in position order, known fields only."""
    rows = [r for r in instance.rows(layout_table) if r.get("name") == table]
    rows.sort(key=lambda r: (_int(r.get("position")), r.get("element", "")))
    fields = instance.registry.fields(table)
    return [r["element"] for r in rows if r.get("element") in fields]


def form_page(instance: Instance, request: Request, table: str) -> Response:
    """One record as a form: label and display value per layout field."""
    sys_id = request.args.get("sys_id", "")
    record = instance.get(table, sys_id) if sys_id else None
    if record is None:
        return _page("Record not found", "<p>Record not found</p>", status=404)

    keys = _with_base(instance, table, layout(instance, "sys_ui_element", table))
    shown = Renderer(instance, request.host_url).render(
        table, [record], keys, mode="true", exclude_link=True
    )[0]
    groups = "".join(_form_group(instance, table, key, shown[key]) for key in keys)
    title = f"{instance.registry.label(table)} - {record.get('name') or sys_id}"
    body = (
        f'<form id="{table}.do" name="{table}.do">'
        f'<input type="hidden" name="sys_uniqueValue" value="{html.escape(sys_id)}">'
        f"{groups}</form>"
    )
    return _page(title, body)


def list_page(instance: Instance, request: Request, table: str) -> Response:
    """The first records of a table with the list layout's columns."""
    keys = _with_base(instance, table, layout(instance, "sys_ui_list_element", table))
    rows = instance.rows(table)[:LIST_LIMIT]
    shown = Renderer(instance, request.host_url).render(
        table, rows, keys, mode="true", exclude_link=True
    )
    head = "".join(f"<th>{html.escape(_label(instance, table, k))}</th>" for k in keys)
    body_rows = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(str(r[k] or ''))}</td>" for k in keys)
        + "</tr>"
        for r in shown
    )
    table_html = (
        f'<table id="{table}_table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body_rows}</tbody></table>"
    )
    return _page(f"{instance.registry.label(table)} list", table_html)


def _with_base(instance: Instance, table: str, elements: list[str]) -> list[str]:
    fields = instance.registry.fields(table)
    base = [f for f in BASE_FORM_FIELDS if f in fields]
    return base + [e for e in elements if e not in base]


def _label(instance: Instance, table: str, element: str) -> str:
    meta = instance.registry.field(table, element)
    return (meta.label if meta and meta.label else element) or element


def _form_group(instance: Instance, table: str, key: str, value: object) -> str:
    label = html.escape(_label(instance, table, key))
    text = html.escape("" if value is None else str(value))
    ident = f"{table}.{key}"
    return (
        f'<div class="form-group" id="element.{ident}">'
        f'<label for="{ident}">{label}</label>'
        f'<span class="value" id="{ident}">{text}</span></div>'
    )


def _page(title: str, body: str, *, status: int = 200) -> Response:
    document = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return Response(document, status=status, content_type="text/html; charset=utf-8")


def _int(value: str | None) -> int:
    try:
        return int(float(value or ""))
    except ValueError:
        return 0
