"""Encoded query (``sysparm_query``) to SQL.

Grammar (TABLE_API.md §3): terms joined by ``^`` (AND) and ``^OR`` (OR with the
previous term), ``^NQ`` starts a new OR-ed block, ``ORDERBY``/``ORDERBYDESC``
chain, a trailing ``^EQ`` is a no-op. A term naming an unknown field (or using an
operator we do not know) is dropped and the rest still runs, which is what a real
instance does by default (§3.5). Values are taken literally.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from connector.emulator import gsdates
from connector.emulator.registry import FieldMeta, Registry
from connector.emulator.storage import quote_ident

LOG = logging.getLogger(__name__)

# Longest first, so "NOT IN" wins over "IN" and ">=" over ">".
OPERATORS = (
    "GT_OR_EQUALS_FIELD",
    "LT_OR_EQUALS_FIELD",
    "ISNOTEMPTY",
    "EMPTYSTRING",
    "STARTSWITH",
    "RELATIVEGT",
    "RELATIVELT",
    "ENDSWITH",
    "NOT LIKE",
    "GT_FIELD",
    "LT_FIELD",
    "ANYTHING",
    "ISEMPTY",
    "NOTLIKE",
    "BETWEEN",
    "NSAMEAS",
    "NOT IN",
    "SAMEAS",
    "NOTON",
    "LIKE",
    "ON",
    "IN",
    "!=",
    ">=",
    "<=",
    "=",
    ">",
    "<",
)
_USER_ID = re.compile(r"^gs\.getUserID\(\)\s*;?$")
_TERM = re.compile(r"^([a-z0-9_.]+)(.*)$", re.S)
_COMPARE = {"=": "=", "!=": "!=", ">": ">", ">=": ">=", "<": "<", "<=": "<="}
_FIELD_OPS = {
    "SAMEAS": "=",
    "NSAMEAS": "!=",
    "GT_FIELD": ">",
    "LT_FIELD": "<",
    "GT_OR_EQUALS_FIELD": ">=",
    "LT_OR_EQUALS_FIELD": "<=",
}
_RELATIVE_UNITS = {"minute": "minutes", "hour": "hours", "day": "days", "week": "weeks"}


class InvalidTerm(ValueError):
    """A term the instance would silently drop."""


@dataclass
class Term:
    """One parsed ``<field><op><value>`` term."""

    field: str
    op: str
    value: str
    raw: str


@dataclass
class ParsedQuery:
    """Blocks (OR-ed by ``^NQ``) of AND-ed groups of OR-ed terms, plus ordering."""

    blocks: list[list[list[Term]]] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)


@dataclass
class Compiled:
    """SQL pieces for the base table aliased ``t``."""

    where: str
    params: list[object]
    order_by: list[str]
    dropped: list[str]


def parse_term(token: str) -> Term:
    """Split ``fieldOPvalue``; raise :class:`InvalidTerm` when no operator fits."""
    match = _TERM.match(token)
    if not match:
        raise InvalidTerm(token)
    name, rest = match.groups()
    for op in OPERATORS:
        if rest.startswith(op):
            return Term(name, op, rest[len(op) :], token)
    raise InvalidTerm(token)


def parse(query: str) -> ParsedQuery:
    """Parse an encoded query into blocks, groups and ordering."""
    parsed = ParsedQuery()
    block: list[list[Term]] = []
    for token in query.split("^"):
        if token.startswith("NQ"):
            parsed.blocks.append(block)
            block = []
            token = token[2:]
        if not token or token == "EQ":
            continue
        if token.startswith("ORDERBYDESC"):
            parsed.order.append((token[len("ORDERBYDESC") :], True))
            continue
        if token.startswith("ORDERBY"):
            parsed.order.append((token[len("ORDERBY") :], False))
            continue
        is_or = token.startswith("OR")
        body = token[2:] if is_or else token
        try:
            term = parse_term(body)
        except InvalidTerm:
            parsed.invalid.append(token)
            continue
        if is_or and block:
            block[-1].append(term)
        else:
            block.append([term])
    parsed.blocks.append(block)
    return parsed


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return value.strip() != ""


class QueryCompiler:
    """Compiles parsed queries against the live dictionary."""

    def __init__(
        self,
        registry: Registry,
        source: Callable[[str], str],
        now: Callable[[], datetime],
        tz: tzinfo | None = None,
        user_id: str = "",
    ) -> None:
        self.registry = registry
        self.source = source
        self.now = now
        self.tz = tz  # the session user's time zone for gs.* helpers
        self.user_id = user_id  # what gs.getUserID() answers

    # --- fields ---------------------------------------------------------------

    def resolve(self, table: str, path: str) -> tuple[str, FieldMeta] | None:
        """SQL expression and dictionary entry of a (dot-walked) field path."""
        parts = path.split(".")
        current, expr, meta = table, "", None
        for depth, part in enumerate(parts):
            meta = self.registry.field(current, part)
            if meta is None:
                return None
            if depth == 0:
                expr = f"t.{quote_ident(part)}"
            else:
                alias = f"d{depth}"
                expr = (
                    f"(SELECT {alias}.{quote_ident(part)} FROM {self.source(current)}"
                    f" AS {alias} WHERE {alias}.sys_id = {expr})"
                )
            if depth < len(parts) - 1:
                if not meta.is_reference:
                    return None
                current = meta.reference
        if len(parts) > 1:
            expr = f"COALESCE({expr}, '')"
        assert meta is not None
        return expr, meta

    # --- values ---------------------------------------------------------------

    def value(self, meta: FieldMeta, raw: str) -> str:
        """Evaluate ``javascript:`` helpers and normalise to the stored form."""
        value = raw
        if value.startswith("javascript:"):
            script = value[len("javascript:") :].strip()
            if _USER_ID.match(script):
                return self.user_id
            evaluated = gsdates.evaluate(script, self.now(), self.tz)
            if evaluated is None:
                raise InvalidTerm(raw)
            value = evaluated
        if meta.internal_type == "glide_date" and len(value) > 10:
            value = value[:10]
        if meta.internal_type == "boolean":
            value = {"1": "true", "0": "false"}.get(value, value)
        return value

    # --- terms ----------------------------------------------------------------

    def compile_term(self, table: str, term: Term) -> tuple[str, list[object]]:
        """SQL for one term; raises :class:`InvalidTerm` to have it dropped."""
        resolved = self.resolve(table, term.field)
        if resolved is None:
            raise InvalidTerm(term.raw)
        expr, meta = resolved
        op, raw = term.op, term.value
        if op == "ANYTHING":
            return "1", []
        if op in ("ISEMPTY", "EMPTYSTRING"):
            return f"{expr} = ''", []
        if op == "ISNOTEMPTY":
            return f"{expr} != ''", []
        if op in _FIELD_OPS:
            other = self.resolve(table, raw)
            if other is None:
                raise InvalidTerm(term.raw)
            return self._compare_exprs(meta, expr, _FIELD_OPS[op], other[0]), []
        if op in ("LIKE", "NOT LIKE", "NOTLIKE", "STARTSWITH", "ENDSWITH"):
            return self._like(expr, op, raw)
        if op in ("IN", "NOT IN"):
            return self._in(meta, expr, op, raw)
        if op in ("BETWEEN", "ON", "NOTON"):
            return self._between(meta, expr, op, raw)
        if op in ("RELATIVEGT", "RELATIVELT"):
            return self._relative(expr, op, raw)
        return self._compare(meta, expr, _COMPARE[op], self.value(meta, raw))

    def _compare(
        self, meta: FieldMeta, expr: str, op: str, value: str
    ) -> tuple[str, list[object]]:
        if meta.is_numeric:
            if not _is_number(value):
                # A real instance answers "state=NOT_A_NUMBER" with no rows.
                return ("1", []) if op == "!=" else ("0", [])
            test = f"({expr} != '' AND CAST({expr} AS REAL) {{}} ?)"
            if op == "!=":
                return f"NOT {test.format('=')}", [float(value)]
            return test.format(op), [float(value)]
        return f"{expr} {op} ?", [value]

    def _compare_exprs(self, meta: FieldMeta, left: str, op: str, right: str) -> str:
        if meta.is_numeric:
            return f"CAST({left} AS REAL) {op} CAST({right} AS REAL)"
        return f"{left} {op} {right}"

    def _like(self, expr: str, op: str, raw: str) -> tuple[str, list[object]]:
        pattern = {
            "STARTSWITH": "{}%",
            "ENDSWITH": "%{}",
        }.get(op, "%{}%").format(_like_escape(raw))
        negate = "NOT " if op in ("NOT LIKE", "NOTLIKE") else ""
        return f"{expr} {negate}LIKE ? ESCAPE '\\'", [pattern]

    def _in(
        self, meta: FieldMeta, expr: str, op: str, raw: str
    ) -> tuple[str, list[object]]:
        values = [self.value(meta, v) for v in raw.split(",")]
        negate = "NOT " if op == "NOT IN" else ""
        if meta.is_numeric:
            numbers = [float(v) for v in values if _is_number(v)]
            if not numbers:
                return ("1", []) if negate else ("0", [])
            marks = ",".join("?" * len(numbers))
            test = f"({expr} != '' AND CAST({expr} AS REAL) IN ({marks}))"
            return f"{negate}{test}", list(numbers)
        marks = ",".join("?" * len(values))
        return f"{expr} {negate}IN ({marks})", list(values)

    def _between(
        self, meta: FieldMeta, expr: str, op: str, raw: str
    ) -> tuple[str, list[object]]:
        parts = raw.split("@")
        if op != "BETWEEN":
            parts = parts[1:]  # ONToday@start@end: the label is informative only
        if len(parts) != 2:
            raise InvalidTerm(raw)
        low, high = (self.value(meta, p) for p in parts)
        if meta.is_numeric:
            if not (_is_number(low) and _is_number(high)):
                return "0", []
            test = f"({expr} != '' AND CAST({expr} AS REAL) BETWEEN ? AND ?)"
            return test, [float(low), float(high)]
        negate = "NOT " if op == "NOTON" else ""
        return f"{negate}({expr} BETWEEN ? AND ?)", [low, high]

    def _relative(self, expr: str, op: str, raw: str) -> tuple[str, list[object]]:
        # sla_dueRELATIVEGT@hour@ago@1
        parts = raw.split("@")
        if (
            len(parts) != 4
            or parts[1] not in _RELATIVE_UNITS
            or parts[2]
            not in (
                "ago",
                "ahead",
            )
        ):
            raise InvalidTerm(raw)
        try:
            amount = int(parts[3])
        except ValueError as exc:
            raise InvalidTerm(raw) from exc
        delta = timedelta(**{_RELATIVE_UNITS[parts[1]]: amount})
        now = self.now().replace(microsecond=0, tzinfo=None)
        moment = now - delta if parts[2] == "ago" else now + delta
        sql_op = ">" if op == "RELATIVEGT" else "<"
        return f"({expr} != '' AND {expr} {sql_op} ?)", [moment.strftime(gsdates.FMT)]

    # --- whole query ------------------------------------------------------------

    def compile(self, table: str, query: str) -> Compiled:
        """Compile a whole encoded query for ``table`` (aliased ``t``)."""
        parsed = parse(query or "")
        dropped = list(parsed.invalid)
        block_sql: list[str] = []
        params: list[object] = []
        bounds: list[dict[str, tuple[str, str]]] = []
        for block in parsed.blocks:
            sql, block_params, block_bounds = self._compile_block(table, block, dropped)
            block_sql.append(sql)
            params.extend(block_params)
            bounds.append(block_bounds)
        where, params = self._combine(block_sql, params, bounds)
        order_by = self._order(table, parsed.order)
        if dropped:
            LOG.info("Dropped invalid query terms on %r: %s", table, dropped)
        return Compiled(where, params, order_by, dropped)

    def _compile_block(
        self, table: str, block: list[list[Term]], dropped: list[str]
    ) -> tuple[str, list[object], dict[str, tuple[str, str]]]:
        ands: list[str] = []
        params: list[object] = []
        bounds: dict[str, tuple[str, str]] = {}
        for group in block:
            ors: list[str] = []
            for term in group:
                try:
                    sql, term_params = self.compile_term(table, term)
                except (InvalidTerm, ValueError):
                    dropped.append(term.raw)
                    continue
                ors.append(sql)
                params.extend(term_params)
                if len(group) == 1:
                    self._note_bound(table, term, term_params, bounds)
            if ors:
                ands.append(ors[0] if len(ors) == 1 else "(" + " OR ".join(ors) + ")")
        return (" AND ".join(ands) if ands else "1"), params, bounds

    def _note_bound(
        self,
        table: str,
        term: Term,
        params: list[object],
        bounds: dict[str, tuple[str, str]],
    ) -> None:
        """Remember a lower bound on a plain text/date column (for keyset speed)."""
        if "." in term.field or term.op not in ("=", ">", ">=", "BETWEEN"):
            return
        meta = self.registry.field(table, term.field)
        if meta is None or meta.is_numeric or not params:
            return
        low = str(params[0])
        old = bounds.get(term.field)
        if old is None or low > old[1]:
            bounds[term.field] = (f"t.{quote_ident(term.field)}", low)

    def _combine(
        self,
        blocks: list[str],
        params: list[object],
        bounds: list[dict[str, tuple[str, str]]],
    ) -> tuple[str, list[object]]:
        if len(blocks) == 1:
            return blocks[0], params
        where = "(" + ") OR (".join(blocks) + ")"
        # A lower bound every block shares is added redundantly so SQLite can
        # range-scan the (sys_updated_on, sys_id) index for compound cursors.
        shared = set.intersection(*(set(b) for b in bounds)) if bounds else set()
        extra: list[str] = []
        extra_params: list[object] = []
        for name in sorted(shared):
            expr = bounds[0][name][0]
            extra.append(f"{expr} >= ?")
            extra_params.append(min(b[name][1] for b in bounds))
        if not extra:
            return where, params
        return " AND ".join([*extra, f"({where})"]), extra_params + params

    def _order(self, table: str, order: list[tuple[str, bool]]) -> list[str]:
        """ORDER BY expressions; an unknown sort field is ignored (not invalid)."""
        out: list[str] = []
        for path, desc in order:
            resolved = self.resolve(table, path)
            if resolved is None:
                LOG.info("Ignoring sort on unknown field %r of %r", path, table)
                continue
            expr, meta = resolved
            if meta.is_numeric:
                expr = (
                    f"(CASE WHEN {expr} = '' THEN NULL ELSE CAST({expr} AS REAL) END)"
                )
            out.append(expr + (" DESC" if desc else ""))
        return out
