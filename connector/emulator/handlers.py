"""Table API, Aggregate API and Batch API handlers (TABLE_API.md §2–§7)."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from werkzeug.datastructures import MultiDict
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from connector.emulator.auth import User
from connector.emulator.instance import CASE_TABLE, ApiError, Instance
from connector.emulator.query import Compiled
from connector.emulator.render import Renderer

if TYPE_CHECKING:
    from connector.emulator.app import EmulatorApp

DEFAULT_LIMIT = 10000
TRUE = "true"


def _json(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    from connector.emulator.app import json_response

    return json_response(body, status, headers)


def _flag(args: MultiDict, name: str) -> bool:
    return args.get(name, "false").strip().lower() == TRUE


def _int_arg(args: MultiDict, name: str, default: int) -> int:
    try:
        value = int(args.get(name, default))
    except ValueError:
        return default
    return max(value, 0)


def _mode(args: MultiDict) -> str:
    mode = args.get("sysparm_display_value", "false").strip().lower()
    return mode if mode in ("true", "false", "all") else "false"


def base_url(request: Request) -> str:
    return request.host_url.rstrip("/")


# --- Table API ------------------------------------------------------------------


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


def name_value_query(instance: Instance, table: str, args: MultiDict) -> str:
    """``&active=true&state=Closed`` pairs as an encoded query (labels accepted)."""
    terms: list[str] = []
    for key, value in args.items(multi=True):
        if key.startswith("sysparm_"):
            continue
        choices = instance.registry.choice_list(table, key) or {}
        by_label = {label: code for code, label in choices.items()}
        if value not in choices and value in by_label:
            value = by_label[value]
        terms.append(f"{key}={value}")
    return "^".join(terms)


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


def _query_of(instance: Instance, table_name: str, args: MultiDict) -> str:
    query = args.get("sysparm_query")
    return query if query is not None else name_value_query(instance, table_name, args)


def read_page(
    instance: Instance, args: MultiDict, user: User, table_name: str, limit: int
) -> Page:
    """Query, count and ACL-filter one page of a list GET."""
    compiled = instance.compile(table_name, _query_of(instance, table_name, args))
    keys = requested_keys(instance, table_name, args)
    if compiled.dropped and instance.faults.invalid_query_returns_no_rows:
        return Page([], keys, 0, False)

    offset = _int_arg(args, "sysparm_offset", 0)
    rows = fetch(instance, table_name, compiled, keys, limit=limit, offset=offset)
    total = None
    if not _flag(args, "sysparm_no_count"):
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
    limit = _int_arg(args, "sysparm_limit", DEFAULT_LIMIT) or DEFAULT_LIMIT
    faults = instance.faults
    if faults.max_page_rows is not None and limit > faults.max_page_rows:
        from connector.emulator.app import CANCELLED

        raise ApiError(500, *CANCELLED)

    page = read_page(instance, args, user, table_name, limit)
    if faults.latency_per_row_ms > 0:
        time.sleep(len(page.rows) * faults.latency_per_row_ms / 1000)
    if version == "v1" and not page.rows:
        raise ApiError(404, "No Record found", "Records not found")

    body = Renderer(instance, base_url(request)).render(
        table_name,
        page.rows,
        page.keys,
        mode=_mode(args),
        exclude_link=_flag(args, "sysparm_exclude_reference_link"),
    )
    headers: dict[str, str] = {}
    if page.total is not None:
        headers["X-Total-Count"] = str(page.total)
    if not _flag(args, "sysparm_suppress_pagination_header"):
        offset = _int_arg(args, "sysparm_offset", 0)
        headers["Link"] = link_header(request, limit, offset, page.total, page.full)
    return _json({"result": body}, 200, headers)


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
    instance: Instance, request: Request, table_name: str, sys_id: str
) -> dict[str, Any] | None:
    args = request.args
    keys = requested_keys(instance, table_name, args)
    compiled = Compiled("t.sys_id = ?", [sys_id], [], [])
    rows = fetch(instance, table_name, compiled, keys, limit=1, offset=0)
    if not rows:
        return None
    return Renderer(instance, base_url(request)).render(
        table_name,
        rows,
        keys,
        mode=_mode(args),
        exclude_link=_flag(args, "sysparm_exclude_reference_link"),
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
    return _json({"result": render_one(instance, request, table_name, sys_id)})


def _body(instance: Instance, request: Request, table_name: str) -> dict[str, Any]:
    """The JSON body; with several records only the first counts (§1)."""
    data = request.get_json(force=True, silent=True)
    if isinstance(data, list):
        data = data[0] if data else {}
    if not isinstance(data, dict):
        raise ApiError(400, "Exception while reading request", "Invalid JSON body")
    if _flag(request.args, "sysparm_input_display_value"):
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
    table_name: str,
    sys_id: str,
    status: int,
    headers: dict[str, str] | None = None,
) -> Response:
    if request.headers.get("X-no-response-body", "").lower() == TRUE:
        return Response(b"", status=status, headers=headers)
    body = {"result": render_one(instance, request, table_name, sys_id)}
    return _json(body, status, headers)


def post(instance: Instance, request: Request, user: User, table_name: str) -> Response:
    values = _body(instance, request, table_name)
    instance.check_write(user, table_name, "insert", _str_values(values))
    row = instance.insert(table_name, values, user=user.name)
    location = f"{base_url(request)}/api/now/table/{table_name}/{row['sys_id']}"
    return _write_answer(
        instance, request, table_name, row["sys_id"], 201, {"Location": location}
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
    return _write_answer(instance, request, table_name, sys_id, 200)


def delete(instance: Instance, user: User, table_name: str, sys_id: str) -> Response:
    current = instance.get(table_name, sys_id)
    if current is None or instance.is_hidden(user.name, current, table_name):
        raise _not_found()
    instance.check_write(user, table_name, "delete", current)
    instance.delete(table_name, sys_id, user=user.name)
    return Response(b"", status=204)


# --- Aggregate API ------------------------------------------------------------------

AGGREGATES = ("avg", "sum", "min", "max")


def _number(value: float | None, kind: str) -> str:
    if value is None:
        return ""
    if kind == "avg":
        return f"{value:.4f}"
    if float(value).is_integer():
        return str(int(value))
    return repr(round(float(value), 4))


def stats(
    instance: Instance, request: Request, user: User, table_name: str
) -> Response:
    """``GET /api/now/stats/{table}`` with the shapes of §7.2."""
    if not instance.registry.has_table(table_name):
        raise ApiError(400, f"Invalid table {table_name}")
    if user.name == instance.acl_user and table_name in (CASE_TABLE, "task"):
        # The Aggregate API wants read access to every record of the table.
        raise ApiError(
            403,
            "Insufficient rights to query records",
            f"ACL restricts some records of {table_name}",
        )
    instance.check_read(user.name, table_name)
    args = request.args
    compiled = instance.compile(table_name, _query_of(instance, table_name, args))
    selects, labels = _aggregate_selects(instance, table_name, args)
    groups = _group_exprs(instance, table_name, args)
    if not groups and not selects:
        return _json({"result": {"stats": {}}})

    sql = (
        f"SELECT {', '.join([e for _, e in groups] + selects)}"
        f" FROM {instance.source(table_name)} AS t WHERE {compiled.where}"
    )
    if groups:
        by = ", ".join(e for _, e in groups)
        sql += f" GROUP BY {by} ORDER BY {by}"
    rows = instance.store.query(sql, compiled.params)
    results = [_stats_row(row[len(groups) :], labels) for row in rows]
    if not groups:
        return _json({"result": results[0]})

    for row, result in zip(rows, results, strict=True):
        result["groupby_fields"] = [
            {"field": name, "value": row[i] or ""} for i, (name, _) in enumerate(groups)
        ]
    return _json({"result": results})


def _group_exprs(
    instance: Instance, table_name: str, args: MultiDict
) -> list[tuple[str, str]]:
    """``sysparm_group_by`` fields that resolve, with their SQL expressions."""
    out: list[tuple[str, str]] = []
    for name in (g.strip() for g in args.get("sysparm_group_by", "").split(",")):
        resolved = instance.compiler.resolve(table_name, name) if name else None
        if resolved is not None:
            out.append((name, resolved[0]))
    return out


def _aggregate_selects(
    instance: Instance, table_name: str, args: MultiDict
) -> tuple[list[str], list[tuple[str, str, str]]]:
    selects: list[str] = []
    labels: list[tuple[str, str, str]] = []
    if _flag(args, "sysparm_count"):
        selects.append("COUNT(*)")
        labels.append(("count", "", "count"))
    for kind in AGGREGATES:
        for name in args.get(f"sysparm_{kind}_fields", "").split(","):
            name = name.strip()
            resolved = instance.compiler.resolve(table_name, name) if name else None
            if resolved is None:
                continue
            expr, meta = resolved
            numeric = meta.is_numeric or kind in ("avg", "sum")
            value = (
                f"CAST(NULLIF({expr}, '') AS REAL)"
                if numeric
                else f"NULLIF({expr}, '')"
            )
            selects.append(f"{kind.upper()}({value})")
            labels.append((kind, name, "number" if numeric else "text"))
    return selects, labels


def _stats_row(values: tuple, labels: list[tuple[str, str, str]]) -> dict[str, Any]:
    stats_out: dict[str, Any] = {}
    for value, (kind, name, form) in zip(values, labels, strict=True):
        if kind == "count":
            stats_out["count"] = str(value)
            continue
        text = _number(value, kind) if form == "number" else (value or "")
        stats_out.setdefault(kind, {})[name] = text
    return {"stats": stats_out}


# --- Batch API -----------------------------------------------------------------------


def batch(app: EmulatorApp, request: Request, user: User) -> Response:
    """``POST /api/now/v1/batch``: run each item through the same router."""
    data = request.get_json(force=True, silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "Exception while reading request", "Invalid JSON body")
    faults = app.instance.faults
    started = time.monotonic()
    served: list[dict[str, Any]] = []
    unserviced: list[str] = []
    output = 0
    for item in data.get("rest_requests") or []:
        over_time = time.monotonic() - started > faults.batch_time_budget_s
        over_size = output > faults.batch_max_output_bytes
        if served and (over_time or over_size):
            unserviced.append(str(item.get("id", "")))
            continue
        result = _batch_item(app, request, user, item)
        output += len(result["body"])
        served.append(result)
    return _json(
        {
            "batch_request_id": str(data.get("batch_request_id", "")),
            "serviced_requests": served,
            "unserviced_requests": unserviced,
        }
    )


def _batch_item(
    app: EmulatorApp, outer: Request, user: User, item: dict[str, Any]
) -> dict[str, Any]:
    started = time.monotonic()
    headers = {h["name"]: h["value"] for h in item.get("headers") or []}
    body = base64.b64decode(item["body"]) if item.get("body") else None
    environ = EnvironBuilder(
        path=item.get("url", "/"),
        base_url=outer.host_url,
        method=item.get("method", "GET").upper(),
        headers=headers,
        data=body,
    ).get_environ()
    inner = Request(environ)
    try:
        response = app.dispatch(inner, user, inner.method)
    except ApiError as exc:
        from connector.emulator.app import error_response

        response = error_response(exc.status, exc.message, exc.detail)
    answer: dict[str, Any] = {
        "id": str(item.get("id", "")),
        "status_code": response.status_code,
        "status_text": response.status.split(" ", 1)[-1],
        "headers": []
        if item.get("exclude_response_headers")
        else [{"name": k, "value": v} for k, v in response.headers.items()],
        "body": base64.b64encode(response.get_data()).decode(),
        "execution_time": int((time.monotonic() - started) * 1000),
    }
    return answer
