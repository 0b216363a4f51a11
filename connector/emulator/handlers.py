"""Table API handlers: list/single GET, POST, PUT/PATCH, DELETE (TABLE_API.md §2–§6)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from connector.emulator.auth import User
from connector.emulator.instance import ApiError, Instance
from connector.emulator.params import (
    DEFAULT_LIMIT,
    TRUE,
    base_url,
    display_mode,
    flag,
    int_arg,
    query_of,
)
from connector.emulator.query import Compiled
from connector.emulator.render import Renderer
from connector.emulator.responses import CANCELLED, json_response


def table(
    instance: Instance,
    request: Request,
    user: User,
    method: str,
    table_name: str,
    sys_id: str | None,
    version: str | None,
) -> Response:
    """Dispatch one Table API call."""
    if not instance.registry.has_table(table_name):
        raise ApiError(400, f"Invalid table {table_name}")
    if method in ("GET", "HEAD"):
        instance.check_read(user.name, table_name)
        if sys_id:
            return get_one(instance, request, user, table_name, sys_id)
        return get_list(instance, request, user, table_name, version)
    if method == "POST" and not sys_id:
        return post(instance, request, user, table_name)
    if method in ("PUT", "PATCH") and sys_id:
        return patch(instance, request, user, table_name, sys_id)
    if method == "DELETE" and sys_id:
        return delete(instance, user, table_name, sys_id)
    raise ApiError(405, "Method not Supported", f"{method} is not supported here")


def requested_keys(instance: Instance, table: str, args: MultiDict) -> list[str]:
    """Output keys: ``sysparm_fields`` (unknown names dropped) or every field."""
    raw = args.get("sysparm_fields", "").strip()
    if not raw:
        return list(instance.registry.fields(table))
    keys: list[str] = []
    for name in (n.strip() for n in raw.split(",")):
        if not name or name in keys:
            continue
        if "." in name:
            if instance.compiler.resolve(table, name) is not None:
                keys.append(name)
        elif instance.registry.field(table, name) is not None:
            keys.append(name)
    return keys


def fetch(
    instance: Instance,
    table: str,
    compiled: Compiled,
    keys: list[str],
    *,
    limit: int | None,
    offset: int,
) -> list[dict[str, str]]:
    """Select what rendering and the ACL check need."""
    fields = instance.registry.fields(table)
    plain = [k for k in keys if "." not in k]
    for extra in ("sys_id", "sys_class_name"):
        if extra in fields and extra not in plain:
            plain.append(extra)
    walks = [k for k in keys if "." in k]
    salt = instance.faults.salt() if instance.faults.unstable_order else None
    return instance.select(
        table,
        compiled,
        columns=plain,
        walks=walks,
        limit=limit,
        offset=offset,
        shuffle=salt,
    )


@dataclass
class Page:
    """One list page before rendering."""

    rows: list[dict[str, str]]
    keys: list[str]
    total: int | None
    full: bool


def read_page(
    instance: Instance, args: MultiDict, user: User, table_name: str, limit: int
) -> Page:
    """Query, count and ACL-filter one page of a list GET."""
    query = query_of(instance, table_name, args)
    compiled = instance.compile(table_name, query, user.name)
    keys = requested_keys(instance, table_name, args)
    if compiled.dropped and instance.faults.invalid_query_returns_no_rows:
        return Page([], keys, 0, False)

    offset = int_arg(args, "sysparm_offset", 0)
    rows = fetch(instance, table_name, compiled, keys, limit=limit, offset=offset)
    total = None
    if not flag(args, "sysparm_no_count"):
        total = instance.count_matching(table_name, compiled)
    full = len(rows) == limit
    # sysparm_limit applies before row ACLs: pages may come back short (§5.2).
    rows = [r for r in rows if not instance.is_hidden(user.name, r, table_name)]
    return Page(rows, keys, total, full)


def get_list(
    instance: Instance,
    request: Request,
    user: User,
    table_name: str,
    version: str | None,
) -> Response:
    args = request.args
    limit = int_arg(args, "sysparm_limit", DEFAULT_LIMIT) or DEFAULT_LIMIT
    faults = instance.faults
    if faults.max_page_rows is not None and limit > faults.max_page_rows:
        raise ApiError(500, *CANCELLED)

    page = read_page(instance, args, user, table_name, limit)
    if faults.latency_per_row_ms > 0:
        time.sleep(len(page.rows) * faults.latency_per_row_ms / 1000)
    if version == "v1" and not page.rows:
        raise ApiError(404, "No Record found", "Records not found")

    tz = instance.tz_for(user.name)
    body = Renderer(instance, base_url(request), tz).render(
        table_name,
        page.rows,
        page.keys,
        mode=display_mode(args),
        exclude_link=flag(args, "sysparm_exclude_reference_link"),
    )
    headers: dict[str, str] = {}
    if page.total is not None:
        headers["X-Total-Count"] = str(page.total)
    if not flag(args, "sysparm_suppress_pagination_header"):
        offset = int_arg(args, "sysparm_offset", 0)
        headers["Link"] = link_header(request, limit, offset, page.total, page.full)
    return json_response({"result": body}, 200, headers)


def _page_url(request: Request, offset: int, limit: int) -> str:
    """The request URL with a new ``sysparm_offset`` (order of params kept)."""
    pairs = list(request.args.items(multi=True))
    names = [k for k, _ in pairs]
    if "sysparm_offset" not in names:
        pairs.append(("sysparm_offset", ""))
    if "sysparm_limit" not in names:
        pairs.append(("sysparm_limit", str(limit)))
    parts = []
    for key, value in pairs:
        if key == "sysparm_offset":
            value = str(offset)
        parts.append(f"{quote(key, safe='')}={quote(value, safe='')}")
    return f"{base_url(request)}{request.path}?{'&'.join(parts)}"


def link_header(
    request: Request, limit: int, offset: int, total: int | None, full_page: bool
) -> str:
    """``Link`` with first/prev/next/last, no spaces, rel in double quotes (§5.1)."""
    links = [(0, "first")]
    if offset > 0:
        links.append((max(offset - limit, 0), "prev"))
    if total is None:
        if full_page:
            links.append((offset + limit, "next"))
    else:
        if offset + limit < total:
            links.append((offset + limit, "next"))
        last = ((total - 1) // limit) * limit if total > 0 else 0
        links.append((last, "last"))
    return ",".join(f'<{_page_url(request, o, limit)}>;rel="{rel}"' for o, rel in links)


def render_one(
    instance: Instance, request: Request, user: User, table_name: str, sys_id: str
) -> dict[str, Any] | None:
    args = request.args
    keys = requested_keys(instance, table_name, args)
    compiled = Compiled("t.sys_id = ?", [sys_id], [], [])
    rows = fetch(instance, table_name, compiled, keys, limit=1, offset=0)
    if not rows:
        return None
    tz = instance.tz_for(user.name)
    return Renderer(instance, base_url(request), tz).render(
        table_name,
        rows,
        keys,
        mode=display_mode(args),
        exclude_link=flag(args, "sysparm_exclude_reference_link"),
    )[0]


def _not_found() -> ApiError:
    return ApiError(
        404,
        "No Record found",
        "Record doesn't exist or ACL restricts the record retrieval",
    )


def _visible(instance: Instance, user: User, table_name: str, sys_id: str) -> bool:
    row = instance.get(table_name, sys_id)
    return row is not None and not instance.is_hidden(user.name, row, table_name)


def get_one(
    instance: Instance, request: Request, user: User, table_name: str, sys_id: str
) -> Response:
    if not _visible(instance, user, table_name, sys_id):
        raise _not_found()
    body = {"result": render_one(instance, request, user, table_name, sys_id)}
    return json_response(body)


def _body(instance: Instance, request: Request, table_name: str) -> dict[str, Any]:
    """The JSON body; with several records only the first counts (§1)."""
    data = request.get_json(force=True, silent=True)
    if isinstance(data, list):
        data = data[0] if data else {}
    if not isinstance(data, dict):
        raise ApiError(400, "Exception while reading request", "Invalid JSON body")
    if flag(request.args, "sysparm_input_display_value"):
        return {k: _from_display(instance, table_name, k, v) for k, v in data.items()}
    return data


def _from_display(instance: Instance, table_name: str, name: str, value: Any) -> Any:
    """``sysparm_input_display_value=true``: labels and display values as input."""
    meta = instance.registry.field(table_name, name)
    if meta is None or not isinstance(value, str) or not value:
        return value
    choices = instance.registry.choice_list(table_name, name) or {}
    if value not in choices:
        by_label = {label: code for code, label in choices.items()}
        value = by_label.get(value, value)
    column = (
        instance.registry.display_field(meta.reference) if meta.is_reference else None
    )
    if column is not None:
        sql = (
            f"SELECT sys_id FROM {instance.source(meta.reference)}"
            f' WHERE "{column}" = ? ORDER BY sys_id LIMIT 1'
        )
        found = instance.store.query(sql, (value,))
        value = found[0][0] if found else value
    return value


def _write_answer(
    instance: Instance,
    request: Request,
    user: User,
    table_name: str,
    sys_id: str,
    status: int,
    headers: dict[str, str] | None = None,
) -> Response:
    if request.headers.get("X-no-response-body", "").lower() == TRUE:
        return Response(b"", status=status, headers=headers)
    body = {"result": render_one(instance, request, user, table_name, sys_id)}
    return json_response(body, status, headers)


def post(instance: Instance, request: Request, user: User, table_name: str) -> Response:
    values = _body(instance, request, table_name)
    instance.check_write(user, table_name, "insert", _str_values(values))
    row = instance.insert(table_name, values, user=user.name)
    location = f"{base_url(request)}/api/now/table/{table_name}/{row['sys_id']}"
    return _write_answer(
        instance, request, user, table_name, row["sys_id"], 201, {"Location": location}
    )


def _str_values(values: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in values.items()}


def patch(
    instance: Instance, request: Request, user: User, table_name: str, sys_id: str
) -> Response:
    values = _body(instance, request, table_name)
    if not _visible(instance, user, table_name, sys_id):
        raise _not_found()
    kept = instance.clean(table_name, values)
    instance.check_write(user, table_name, "update", kept)
    instance.update(table_name, sys_id, values, user=user.name)
    return _write_answer(instance, request, user, table_name, sys_id, 200)


def delete(instance: Instance, user: User, table_name: str, sys_id: str) -> Response:
    current = instance.get(table_name, sys_id)
    if current is None or instance.is_hidden(user.name, current, table_name):
        raise _not_found()
    instance.check_write(user, table_name, "delete", current)
    instance.delete(table_name, sys_id, user=user.name)
    return Response(b"", status=204)
