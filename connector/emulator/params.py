"""Reading ``sysparm_*`` request parameters the way the Table API does."""

from __future__ import annotations

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request

from connector.emulator.instance import Instance

DEFAULT_LIMIT = 10000
TRUE = "true"


def flag(args: MultiDict, name: str) -> bool:
    return args.get(name, "false").strip().lower() == TRUE


def int_arg(args: MultiDict, name: str, default: int) -> int:
    try:
        value = int(args.get(name, default))
    except ValueError:
        return default
    return max(value, 0)


def display_mode(args: MultiDict) -> str:
    mode = args.get("sysparm_display_value", "false").strip().lower()
    return mode if mode in ("true", "false", "all") else "false"


def base_url(request: Request) -> str:
    return request.host_url.rstrip("/")


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


def query_of(instance: Instance, table_name: str, args: MultiDict) -> str:
    query = args.get("sysparm_query")
    return query if query is not None else name_value_query(instance, table_name, args)
