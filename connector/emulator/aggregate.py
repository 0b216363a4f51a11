"""Aggregate API: ``GET /api/now/stats/{table}`` (TABLE_API.md §7.2)."""

from __future__ import annotations

from typing import Any

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from connector.emulator.auth import User
from connector.emulator.instance import CASE_TABLE, ApiError, Instance
from connector.emulator.params import display_mode, flag, query_of
from connector.emulator.render import Renderer
from connector.emulator.responses import json_response

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
    query = query_of(instance, table_name, args)
    compiled = instance.compile(table_name, query, user.name)
    selects, labels = _aggregate_selects(instance, table_name, args)
    groups = _group_exprs(instance, table_name, args)
    if not groups and not selects:
        return json_response({"result": {"stats": {}}})

    sql = (
        f"SELECT {', '.join([e for _, e in groups] + selects)}"
        f" FROM {instance.source(table_name)} AS t WHERE {compiled.where}"
    )
    params = list(compiled.params)
    if groups:
        by = ", ".join(e for _, e in groups)
        having, having_params = _having(instance, table_name, args)
        sql += f" GROUP BY {by}{having} ORDER BY {by}"
        params += having_params
    rows = instance.store.query(sql, params)
    results = [_stats_row(row[len(groups) :], labels) for row in rows]
    if not groups:
        return json_response({"result": results[0]})

    mode = display_mode(args)
    for row, result in zip(rows, results, strict=True):
        result["groupby_fields"] = [
            _group_field(instance, table_name, name, row[i] or "", mode)
            for i, (name, _) in enumerate(groups)
        ]
    return json_response({"result": results})


def _group_field(
    instance: Instance, table_name: str, name: str, value: str, mode: str
) -> dict[str, Any]:
    """One ``groupby_fields`` entry; labels with ``sysparm_display_value``."""
    if mode == "false":
        return {"field": name, "value": value}
    renderer = Renderer(instance, "")
    shown = renderer.display(table_name, value, renderer.meta_for(table_name, name))
    if mode == "true":
        return {"field": name, "value": shown if shown is not None else value}
    return {"field": name, "value": value, "display_value": shown}


HAVING_OPS = {">", ">=", "<", "<=", "=", "!="}


def _having(
    instance: Instance, table_name: str, args: MultiDict
) -> tuple[str, list[object]]:
    """``sysparm_having=count^priority^>^3`` (comma-separated) as SQL HAVING."""
    clauses: list[str] = []
    params: list[object] = []
    for spec in filter(None, args.get("sysparm_having", "").split(",")):
        parts = spec.split("^")
        if len(parts) != 4 or parts[2] not in HAVING_OPS:
            continue
        kind, name, op, raw = parts
        try:
            number = float(raw)
        except ValueError:
            continue
        if kind == "count":
            expr = "COUNT(*)"
        elif kind in AGGREGATES and (
            resolved := instance.compiler.resolve(table_name, name)
        ):
            expr = f"{kind.upper()}(CAST(NULLIF({resolved[0]}, '') AS REAL))"
        else:
            continue
        clauses.append(f"{expr} {op} ?")
        params.append(number)
    return (" HAVING " + " AND ".join(clauses) if clauses else ""), params


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
    if flag(args, "sysparm_count"):
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
