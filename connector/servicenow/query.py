"""Build encoded queries (``sysparm_query``) that mean exactly what they say.

An encoded query has no escape character: a ``^`` inside a value starts a new term,
a comma inside an ``IN`` value splits it, and a ``javascript:`` value is run on the
instance. Such values are refused with :class:`QueryValueError` rather than
silently changing the query. Date-times are written as UTC literals
(``YYYY-MM-DD HH:MM:SS``), never ``gs.dateGenerate`` (read in the user's zone, C04).

A :class:`Query` is an OR (``^NQ``) of AND-blocks; AND-ing two queries distributes
over their blocks, which is how the keyset pager adds cursor terms to any base.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

FIELD_RE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")
SN_DATETIME = "%Y-%m-%d %H:%M:%S"
DEFAULT_IN_CHUNK = 100
# Operators in the order a parser must try them (longest first).
OPERATORS = (
    "ISNOTEMPTY",
    "ISEMPTY",
    "NOT IN",
    "IN",
    "STARTSWITH",
    "ENDSWITH",
    "NOT LIKE",
    "LIKE",
    "!=",
    ">=",
    "<=",
    "=",
    ">",
    "<",
)

Value = str | int | Decimal | bool | date | datetime


class QueryValueError(ValueError):
    """A field or value cannot be written safely into an encoded query."""


@dataclass(frozen=True)
class Term:
    """One parsed condition: ``field``, ``operator`` and raw ``value``."""

    field: str
    operator: str
    value: str


@dataclass(frozen=True)
class Query:
    """An encoded query: ``blocks`` are OR-ed (``^NQ``), clauses inside AND-ed."""

    blocks: tuple[tuple[str, ...], ...] = ((),)
    order: tuple[str, ...] = ()

    def encode(self) -> str:
        """The ``sysparm_query`` string."""
        parts = ["^".join(block) for block in self.blocks if block]
        text = "^NQ".join(parts)
        if self.order:
            text = "^".join([text, *self.order]) if text else "^".join(self.order)
        return text

    def __str__(self) -> str:
        return self.encode()

    def __and__(self, other: Query) -> Query:
        return Q.and_(self, other)

    @property
    def is_empty(self) -> bool:
        """True when the query has no condition (matches every row)."""
        return not any(self.blocks)


def check_field(name: str) -> str:
    """Return ``name`` if it is a plain or dot-walked column name, else refuse it."""
    if not isinstance(name, str) or not FIELD_RE.match(name):
        raise QueryValueError(
            f"Field name {name!r} is not a valid column name (expected lowercase "
            "letters, digits, '_' and '.' for dot-walking)."
        )
    return name


def format_value(value: Value, *, in_list: bool = False) -> str:
    """Render one value as an encoded-query literal, or refuse it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | Decimal):
        return str(value)
    if not isinstance(value, str):
        raise QueryValueError(f"Unsupported query value type {type(value).__name__}.")
    return _check_text(value, in_list=in_list)


def format_datetime(value: datetime) -> str:
    """UTC ``YYYY-MM-DD HH:MM:SS`` for an aware datetime with whole seconds."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise QueryValueError(
            f"Datetime {value.isoformat()} has no time zone; pass an aware "
            "datetime (e.g. tzinfo=timezone.utc) so it can be converted to UTC."
        )
    if value.microsecond:
        raise QueryValueError(
            f"Datetime {value.isoformat()} has a fraction of a second; instance "
            "timestamps are whole seconds, so truncate or round it explicitly."
        )
    return value.astimezone(UTC).strftime(SN_DATETIME)


def _check_text(value: str, *, in_list: bool) -> str:
    problems = []
    if "^" in value:
        problems.append("'^' (the term separator)")
    if "\n" in value or "\r" in value:
        problems.append("a line break")
    if in_list and "," in value:
        problems.append("',' (the IN list separator)")
    if value.strip().lower().startswith("javascript:"):
        problems.append("a 'javascript:' prefix (evaluated on the instance)")
    if value == "":
        problems.append("nothing (use Q.is_empty for empty fields)")
    if problems:
        raise QueryValueError(
            f"Query value {value[:60]!r} contains {' and '.join(problems)}, which "
            "an encoded query cannot escape; filter it another way."
        )
    return value


def _term(field: str, operator: str, value: Value | None = None) -> Query:
    text = check_field(field) + operator
    if value is not None:
        literal = format_value(value)
        if operator in (">", "<") and literal.startswith("="):
            # 'priority>' + '=5' would be read as 'priority>=5'.
            raise QueryValueError(
                f"Query value {literal[:60]!r} starts with '=', which would turn "
                f"{operator!r} into {operator + '='!r}; filter it another way."
            )
        text += literal
    return Query(((text,),))


class Q:
    """Constructors for :class:`Query`; every value is checked before use."""

    @staticmethod
    def raw(encoded: str) -> Query:
        """Wrap a trusted encoded query (e.g. a mapping's filter); see ``parse``."""
        return parse(encoded)

    @staticmethod
    def eq(field: str, value: Value) -> Query:
        return _term(field, "=", value)

    @staticmethod
    def ne(field: str, value: Value) -> Query:
        return _term(field, "!=", value)

    @staticmethod
    def gt(field: str, value: Value) -> Query:
        return _term(field, ">", value)

    @staticmethod
    def gte(field: str, value: Value) -> Query:
        return _term(field, ">=", value)

    @staticmethod
    def lt(field: str, value: Value) -> Query:
        return _term(field, "<", value)

    @staticmethod
    def lte(field: str, value: Value) -> Query:
        return _term(field, "<=", value)

    @staticmethod
    def starts_with(field: str, value: str) -> Query:
        return _term(field, "STARTSWITH", value)

    @staticmethod
    def is_empty(field: str) -> Query:
        return _term(field, "ISEMPTY")

    @staticmethod
    def is_not_empty(field: str) -> Query:
        return _term(field, "ISNOTEMPTY")

    @staticmethod
    def in_(field: str, values: Iterable[Value]) -> Query:
        """``fieldINa,b,c``; an empty list is refused (it would match nothing)."""
        items = [format_value(value, in_list=True) for value in values]
        if not items:
            raise QueryValueError(f"IN list for {field!r} is empty.")
        return Query(((check_field(field) + "IN" + ",".join(items),),))

    @staticmethod
    def and_(*queries: Query) -> Query:
        """All of ``queries``; ``^NQ`` blocks are distributed: (A|B)&C = AC|BC."""
        blocks: list[tuple[str, ...]] = [()]
        order: list[str] = []
        for query in queries:
            blocks = [left + right for left in blocks for right in query.blocks]
            order.extend(term for term in query.order if term not in order)
        return Query(tuple(blocks), tuple(order))

    @staticmethod
    def or_(*queries: Query) -> Query:
        """Any of single-term queries, joined with ``^OR``."""
        terms = []
        for query in queries:
            if len(query.blocks) != 1 or len(query.blocks[0]) != 1 or query.order:
                raise QueryValueError(
                    "Q.or_ joins single terms; use Q.nq to OR whole queries."
                )
            terms.append(query.blocks[0][0])
        if not terms:
            raise QueryValueError("Q.or_ needs at least one term.")
        return Query((("^OR".join(terms),),))

    @staticmethod
    def nq(*queries: Query) -> Query:
        """Any of whole queries (``^NQ`` blocks); empty queries are refused."""
        if any(query.is_empty for query in queries) or not queries:
            raise QueryValueError("Q.nq needs non-empty queries.")
        blocks = tuple(block for query in queries for block in query.blocks)
        order: list[str] = []
        for query in queries:
            order.extend(term for term in query.order if term not in order)
        return Query(blocks, tuple(order))

    @staticmethod
    def order_by(*fields: str, descending: bool = False) -> Query:
        """``ORDERBY`` (or ``ORDERBYDESC``) terms, applied in the order given."""
        keyword = "ORDERBYDESC" if descending else "ORDERBY"
        return Query(((),), tuple(keyword + check_field(f) for f in fields))


def chunked_in(
    field: str, ids: Sequence[Value], size: int = DEFAULT_IN_CHUNK
) -> Iterator[Query]:
    """``IN`` queries of at most ``size`` values each, keeping URLs under ~8 KB.

    A live instance answered 414 above ~8,192 URL bytes (~245 sys_ids, TABLE_API §1).
    """
    if size < 1:
        raise QueryValueError("chunk size must be at least 1")
    for start in range(0, len(ids), size):
        yield Q.in_(field, ids[start : start + size])


def parse(encoded: str) -> Query:
    """Split an encoded query into blocks and clauses (for distribution).

    ``ORDERBY`` terms are kept aside, a trailing ``^EQ`` (UI "Copy query") is
    dropped, and ``^OR`` terms stay attached to the clause before them.
    """
    blocks: list[list[str]] = [[]]
    order: list[str] = []
    for piece in encoded.split("^") if encoded else []:
        if piece.startswith("ORDERBY"):
            order.append(piece)
        elif piece == "EQ" or piece == "":
            continue
        elif piece.startswith("NQ"):
            blocks.append([piece[2:]] if piece[2:] else [])
        elif piece.startswith("OR") and blocks[-1]:
            blocks[-1][-1] += "^" + piece
        else:
            blocks[-1].append(piece)
    return Query(tuple(tuple(block) for block in blocks), tuple(order))


def parse_term(clause: str) -> Term:
    """Parse one ``field<OP>value`` clause (no ``^``) into a :class:`Term`."""
    match = re.match(r"[a-z0-9_.]+", clause)
    if not match:
        raise QueryValueError(f"Clause {clause!r} does not start with a field name.")
    rest = clause[match.end() :]
    for operator in OPERATORS:
        if rest.startswith(operator):
            return Term(match.group(0), operator, rest[len(operator) :])
    raise QueryValueError(f"Clause {clause!r} has no known operator.")
