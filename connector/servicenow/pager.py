"""Keyset pagers: every row of a window exactly once, whatever ACLs and updates do.

Offset paging skips and repeats rows when the data moves or the order has ties
(C01), and a plain ``sys_updated_on>`` watermark loses the rest of a same-second
burst (C02). These pagers order by a unique key and ask for rows strictly after
the last one seen; they stop only on an empty page, because ``sysparm_limit`` is
applied before ACLs and a short page is not the end (TABLE_API §5.2).

An empty page may still hide rows (a whole page of rows the user cannot read):
the ACL-blind ``X-Total-Count`` then says whether rows lie ahead, and the pager
steps over them with ``sysparm_offset`` inside the same cursor query.

A bounded window (``until`` set, in the past) can only lose rows while it is
paged: an update moves a row past ``until``, a delete removes it. So the
``X-Total-Count`` of the window's first request bounds what is left, and once
that many rows have come back the window is done without asking for the empty
page that would otherwise end it (an empty window costs one request).

The pagers store nothing: the caller persists each page, then its
``page.last_cursor``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from connector.errors import InstanceError, TransactionCancelledError
from connector.servicenow.models import Cursor, Page
from connector.servicenow.query import Q, Query, parse
from connector.servicenow.values import parse_datetime_utc

logger = logging.getLogger(__name__)

MIN_PAGE_SIZE = 50
KEY_FIELD = "sys_id"


class PageSource(Protocol):
    """What a pager needs from a client (``ServiceNowClient.get_page``)."""

    def get_page(
        self,
        table: str,
        *,
        query: str,
        fields: Sequence[str] | None,
        limit: int,
        offset: int = 0,
        count: bool = False,
        display_value: str = "false",
    ) -> Page: ...


class _Pager:
    """Shared loop: fetch after the cursor, skip ACL-hidden stretches, advance."""

    def __init__(
        self,
        client: PageSource,
        table: str,
        *,
        base_query: str,
        fields: Sequence[str] | None,
        page_size: int,
        required: Sequence[str],
    ) -> None:
        self.client = client
        self.table = table
        self.base = _filter_only(base_query)
        self.fields = _with_required(fields, required)
        self.page_size = page_size
        self.min_page_size = min(MIN_PAGE_SIZE, page_size)
        self.cursor: Any = None
        self.pages = 0
        self.rows = 0
        self._last_was_short = False
        # Rows the last counted request said were ahead (ACL-blind), and rows
        # (visible or stepped over) seen since; None when nothing bounds the rest.
        self._ahead: int | None = None
        self._seen = 0

    def __iter__(self) -> Iterator[Page]:
        while True:
            page = self._next_page()
            if page is None:
                return
            yield page

    def count_remaining(self) -> int | None:
        """Rows after the cursor in this window, ACL-blind (one counted request).

        For completeness checks and the C09 canary (a window as big as the table
        means a filter field was silently dropped); never a loop bound.
        """
        query = self._query_after(self.cursor)
        if query is None:
            return 0
        page = self.client.get_page(
            self.table, query=query, fields=[KEY_FIELD], limit=1, count=True
        )
        return page.total

    def _bounded(self) -> bool:
        """True when no row can enter the rest of the window while it is paged."""
        return False

    def _next_page(self) -> Page | None:
        if (
            self._ahead is not None
            and self._seen >= self._ahead
            and self._last_was_short
        ):
            # Every row the count promised has come back and the last page was
            # short. A full last page may hide rows that entered the window
            # without a new stamp (a dot-walked filter): ask once more.
            return None
        query = self._query_after(self.cursor)
        if query is None:
            return None
        owed = self._ahead is not None and self._seen >= self._ahead
        counted = self._last_was_short or owed or (self.pages == 0 and self._bounded())
        page = self._fetch(query, offset=0, count=counted)
        offset = 0
        if not page.rows:
            page, offset = self._skip_hidden(query, page)
        if page is None:
            return None
        self._tally(page, offset, counted or offset > 0)

        cursor = self._cursor_of(page.rows[-1])
        if self.cursor is not None and not cursor > self.cursor:
            raise InstanceError(
                f"Paging {self.table!r} did not advance past {self.cursor!r}; the "
                "instance (or a proxy) seems to ignore the query. Stopping to avoid "
                "a loop."
            )
        self._last_was_short = len(page.rows) < self.page_size
        self.cursor = cursor
        self.pages += 1
        self.rows += len(page.rows)
        return replace(page, last_cursor=cursor)

    def _tally(self, page: Page, offset: int, counted: bool) -> None:
        """Keep count of the rows a bounded window still owes."""
        if not self._bounded():
            return
        if counted and page.total is not None:
            self._ahead, self._seen = page.total, offset
        self._seen += len(page.rows)

    def _skip_hidden(self, query: str, page: Page) -> tuple[Page | None, int]:
        """After an empty page, step over rows ACLs hide until rows or the end.

        Each step asks for the ACL-blind ``X-Total-Count``; once the offset passes
        it, nothing visible is left in the window. Returns the page and its offset.
        """
        offset, total = 0, page.total
        while not page.rows:
            if total is not None and offset + self.page_size >= total:
                return None, offset
            offset += self.page_size
            page = self._fetch(query, offset=offset, count=True)
            total = page.total
            if total is None and not page.rows:
                return None, offset  # no X-Total-Count to go by: trust the empty page
            logger.debug(
                "Rows of %r before offset %d are hidden by ACLs (%s match)",
                self.table,
                offset,
                total,
            )
        return page, offset

    def _fetch(self, query: str, *, offset: int, count: bool) -> Page:
        """One page; on a cancelled transaction halve the page and ask again."""
        while True:
            try:
                return self.client.get_page(
                    self.table,
                    query=query,
                    fields=self.fields,
                    limit=self.page_size,
                    offset=offset,
                    count=count,
                )
            except TransactionCancelledError:
                if self.page_size <= self.min_page_size:
                    raise
                self.page_size = max(self.min_page_size, self.page_size // 2)
                logger.warning(
                    "Instance cancelled a page of %r; retrying with %d rows per page",
                    self.table,
                    self.page_size,
                )

    def _query_after(self, cursor: Any) -> str | None:
        raise NotImplementedError

    def _cursor_of(self, row: dict[str, Any]) -> Any:
        raise NotImplementedError


class KeysetPager(_Pager):
    """Pages of a window in (``cursor_field``, ``sys_id``) order.

    ``since`` is the stored cursor: rows strictly after it are returned; a cursor
    with an empty sys_id means "from this second on" (``>=``). ``until`` is the
    exclusive upper bound of the window (server time minus a lag). The query is
    ``<base>^F>S^F<U^NQ<base>^F=S^sys_id>ID^F<U^ORDERBYF^ORDERBYsys_id``.
    """

    def __init__(
        self,
        client: PageSource,
        table: str,
        *,
        base_query: str = "",
        fields: Sequence[str] | None,
        page_size: int,
        since: Cursor | None,
        until: datetime | None,
        cursor_field: str = "sys_updated_on",
    ) -> None:
        super().__init__(
            client,
            table,
            base_query=base_query,
            fields=fields,
            page_size=page_size,
            required=(cursor_field, KEY_FIELD),
        )
        self.cursor_field = cursor_field
        self.cursor: Cursor | None = since
        self.until = until

    def _bounded(self) -> bool:
        # Rows updated or created from now on carry stamps past ``until`` (the
        # instance's clock minus the sync lag), so none can enter the window.
        return self.until is not None

    def _query_after(self, cursor: Cursor | None) -> str | None:
        field, until = self.cursor_field, self.until
        if cursor is not None and until is not None and cursor[0] >= until:
            return None
        bound = [Q.lt(field, until)] if until is not None else []
        if cursor is None:
            after = Q.and_(*bound)
        elif not cursor[1]:
            after = Q.and_(Q.gte(field, cursor[0]), *bound)
        else:
            after = Q.nq(
                Q.and_(Q.gt(field, cursor[0]), *bound),
                Q.and_(Q.eq(field, cursor[0]), Q.gt(KEY_FIELD, cursor[1]), *bound),
            )
        order = Q.order_by(field, KEY_FIELD)
        return Q.and_(self.base, after, order).encode()

    def _cursor_of(self, row: dict[str, Any]) -> Cursor:
        stamp = parse_datetime_utc(row.get(self.cursor_field, ""))
        key = str(row.get(KEY_FIELD) or "")
        if stamp is None or not key:
            raise InstanceError(
                f"A row of {self.table!r} came back without {self.cursor_field!r} "
                "or sys_id, so paging cannot continue. Check that the integration "
                "user may read both fields."
            )
        return stamp, key


class KeyPager(_Pager):
    """Pages in ``sys_id`` order (``sys_id>X^ORDERBYsys_id``), for key sweeps."""

    def __init__(
        self,
        client: PageSource,
        table: str,
        *,
        base_query: str = "",
        fields: Sequence[str] | None = (KEY_FIELD,),
        page_size: int,
        since: str | None = None,
    ) -> None:
        super().__init__(
            client,
            table,
            base_query=base_query,
            fields=fields,
            page_size=page_size,
            required=(KEY_FIELD,),
        )
        self.cursor: str | None = since

    def _query_after(self, cursor: str | None) -> str:
        after = Q.gt(KEY_FIELD, cursor) if cursor else Query()
        return Q.and_(self.base, after, Q.order_by(KEY_FIELD)).encode()

    def _cursor_of(self, row: dict[str, Any]) -> str:
        key = str(row.get(KEY_FIELD) or "")
        if not key:
            raise InstanceError(
                f"A row of {self.table!r} came back without sys_id; paging cannot "
                "continue."
            )
        return key


def _filter_only(base_query: str) -> Query:
    """The base filter without ORDERBY terms: the pager owns the order."""
    parsed = parse(base_query)
    if parsed.order:
        logger.debug(
            "Ignoring %s in the base query; pagers set the order", parsed.order
        )
    return Query(parsed.blocks)


def _with_required(
    fields: Sequence[str] | None, required: Sequence[str]
) -> list[str] | None:
    """``fields`` plus the cursor fields the pager needs (None = all fields)."""
    if fields is None:
        return None
    return list(dict.fromkeys([*fields, *required]))
