"""Table API client: pysnow underneath, every response checked, retries by policy.

pysnow builds the URLs and parameters and sends each request through our own
``requests.Session`` (auth, TLS, one cookie jar per client). Its response handling
is bypassed because it cannot classify faults. Measured against the emulator: an
HTML login page and a truncated body both raise the same bare
``requests.JSONDecodeError`` (no status, no body); an empty 202 raises
``EmptyContent`` whose message carries the full request URL; 429, 500 and
"Transaction cancelled" all raise a plain ``HTTPError``; and (its source) a 200
carrying an ``error`` envelope raises ``MissingResult`` without the instance's
message. A session response hook hands us the raw response, which
:mod:`connector.servicenow.responses` checks. pysnow's own cost is ~0.5 ms of a
~25 ms request (cProfile, 40 pages of 200 rows), so nothing else is bypassed.

One client = one session; give each worker thread its own via :meth:`clone`.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pysnow
import requests
from urllib3.exceptions import InsecureRequestWarning

from connector import __version__
from connector.config import InstanceSettings
from connector.errors import (
    AuthError,
    InstanceError,
    NotFoundError,
    TransactionCancelledError,
)
from connector.servicenow.auth import Authenticator, build_authenticator
from connector.servicenow.batch import decode_batch, encode_batch
from connector.servicenow.metadata import DataDictionary, read_signature
from connector.servicenow.metrics import ClientMetrics
from connector.servicenow.models import BatchItem, BatchResult, FieldInfo, Page
from connector.servicenow.responses import (
    CheckedResponse,
    Context,
    UnauthorizedResponse,
    check_response,
    error_for_transport,
    result_of,
    server_date,
    total_count,
)
from connector.servicenow.retry import RetryPolicy, is_not_executed, is_retriable
from connector.servicenow.session import new_session

logger = logging.getLogger(__name__)

DISPLAY_VALUES = frozenset({"false", "true", "all"})
SERVER_TIME_ATTEMPTS = 3


# Token refreshes one request may make before a 401 is final (see ``_call``).
AUTH_REFRESHES = 2


class ServiceNowClient:
    """A Table API client for one instance; not shared between threads."""

    def __init__(
        self,
        settings: InstanceSettings,
        *,
        metrics: ClientMetrics | None = None,
        sleep: Callable[[float], None] = time.sleep,
        authenticator: Authenticator | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or ClientMetrics()
        self._sleep = sleep
        self._retry = RetryPolicy(settings, metrics=self.metrics, sleep=sleep)
        self._metadata = DataDictionary()
        self._dictionaries: dict[str, dict[str, FieldInfo]] = {}

        self._auth = authenticator or build_authenticator(
            settings, metrics=self.metrics
        )
        self._session = new_session(self.settings)
        self._session.auth = self._auth
        self._session.hooks["response"].append(self._capture)
        self._last_response: requests.Response | None = None
        self._snow = self._pysnow_client()
        self._warn_if_unverified()

    def _pysnow_client(self) -> pysnow.Client:
        """pysnow on our session (it sets JSON headers; we set the User-Agent)."""
        parts = urlsplit(self.settings.url)
        client = pysnow.Client(
            host=parts.netloc + parts.path,
            use_ssl=parts.scheme == "https",
            session=self._session,
        )
        self._session.headers["User-Agent"] = f"csm-sync/{__version__} (pysnow)"
        return client

    def __repr__(self) -> str:
        host = urlsplit(self.settings.url).hostname
        return f"<ServiceNowClient {host} auth={self._auth.method}>"

    def __enter__(self) -> ServiceNowClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def clone(self) -> ServiceNowClient:
        """A new client (own session) sharing settings, metrics and tokens."""
        return ServiceNowClient(
            self.settings,
            metrics=self.metrics,
            sleep=self._sleep,
            authenticator=self._auth,
        )

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()

    # --- reads ---------------------------------------------------------------

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
    ) -> Page:
        """One list GET; ``count`` asks for ``X-Total-Count`` (costs a count(*)).

        ``display_value`` is ``"false"`` (raw values), ``"true"`` or ``"all"``.
        """
        _check_page_options(display_value, limit, offset)
        params: dict[str, str | None] = {
            "sysparm_display_value": display_value,
            "sysparm_exclude_reference_link": "true",
            "sysparm_suppress_pagination_header": "true",
            "sysparm_no_count": None if count else "true",
            "sysparm_fields": ",".join(fields) if fields else None,
            "sysparm_view": None,
        }

        def send(resource: Any) -> None:
            resource.get(query=query, limit=limit, offset=offset, fields=[])

        checked = self._call(
            "GET", f"/table/{table}", params, send, Context("reading", table, "")
        )
        rows = result_of(checked, list, table)
        logger.debug("Read %d rows from %r (offset %d)", len(rows), table, offset)
        return Page(
            rows=rows,
            total=total_count(checked.headers) if count else None,
            server_time=server_date(checked.headers),
            headers=checked.headers,
        )

    def get_record(
        self, table: str, sys_id: str, *, fields: Sequence[str] | None = None
    ) -> dict[str, Any] | None:
        """One record by sys_id, or None when missing or hidden by an ACL (404)."""
        params = self._record_params(fields)
        try:
            checked = self._call(
                "GET",
                f"/table/{table}",
                params,
                lambda r: r.request("GET", path_append=f"/{sys_id}"),
                Context("reading a record of", table, ""),
            )
        except NotFoundError:
            return None
        return result_of(checked, dict, table)

    def server_time(self, table: str = "sys_user") -> datetime:
        """The instance's clock (UTC, whole seconds) from a cheap request's ``Date``.

        Window upper bounds come from here, never from the local clock (skew).
        """
        # A one-row read cannot be made smaller, so a cancelled transaction here
        # is instance load, not page size: ask again a few times.
        for attempt in range(SERVER_TIME_ATTEMPTS):
            try:
                page = self.get_page(table, query="", fields=["sys_id"], limit=1)
                break
            except TransactionCancelledError:
                if attempt + 1 == SERVER_TIME_ATTEMPTS:
                    raise
        if page.server_time is None:
            raise InstanceError(
                f"Reading {table!r} returned no Date header, so the instance's "
                "clock is unknown. Check for a proxy stripping headers."
            )
        return page.server_time

    # --- writes --------------------------------------------------------------

    def create(self, table: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a record; retried only on 429 (a re-POST could duplicate it)."""
        checked = self._call(
            "POST",
            f"/table/{table}",
            self._record_params(None),
            lambda r: r.create(dict(body)),
            Context("creating a record in", table, ""),
            retry_on=is_not_executed,
        )
        return result_of(checked, dict, table)

    def patch(self, table: str, sys_id: str, body: Mapping[str, str]) -> dict[str, Any]:
        """PATCH fields of one record; returns the record the instance answered."""
        data = json.dumps(dict(body))
        checked = self._call(
            "PATCH",
            f"/table/{table}",
            self._record_params(None),
            lambda r: r.request("PATCH", path_append=f"/{sys_id}", data=data),
            Context("updating a record of", table, ""),
        )
        return result_of(checked, dict, table)

    def delete(self, table: str, sys_id: str) -> None:
        """DELETE one record; a 404 on a retry after a lost answer counts as done."""
        attempts = 0

        def send(resource: Any) -> None:
            nonlocal attempts
            attempts += 1
            resource.request("DELETE", path_append=f"/{sys_id}")

        try:
            self._call(
                "DELETE",
                f"/table/{table}",
                {},
                send,
                Context("deleting a record of", table, ""),
            )
        except NotFoundError:
            if attempts < 2:
                raise

    # --- other APIs ------------------------------------------------------------

    def batch(self, items: Sequence[BatchItem]) -> BatchResult:
        """Run several requests in one Batch API call (``/api/now/v1/batch``)."""
        has_post = any(item.method.upper() == "POST" for item in items)
        data = encode_batch(items)
        checked = self._call(
            "POST",
            "/v1/batch",
            {},
            lambda r: r.request("POST", data=data),
            Context("sending a batch of", f"{len(items)} requests", ""),
            retry_on=is_not_executed if has_post else is_retriable,
        )
        return decode_batch(checked.payload)

    def stats(
        self,
        table: str,
        *,
        query: str = "",
        count: bool = True,
        group_by: Sequence[str] | None = None,
        sum_fields: Sequence[str] | None = None,
        avg_fields: Sequence[str] | None = None,
        min_fields: Sequence[str] | None = None,
        max_fields: Sequence[str] | None = None,
        having: str | None = None,
        display_value: str = "false",
    ) -> Any:
        """Aggregate API: the ``result`` (a dict, or a list of groups with group_by).

        The instance answers 403 when an ACL hides any row of the table (§7.2).
        """
        params = {
            **_PYSNOW_DEFAULTS_OFF,
            "sysparm_query": query,
            "sysparm_count": "true" if count else None,
            "sysparm_group_by": _join(group_by),
            "sysparm_sum_fields": _join(sum_fields),
            "sysparm_avg_fields": _join(avg_fields),
            "sysparm_min_fields": _join(min_fields),
            "sysparm_max_fields": _join(max_fields),
            "sysparm_having": having,
            "sysparm_display_value": display_value,
        }
        checked = self._call(
            "GET",
            f"/stats/{table}",
            params,
            lambda r: r.request("GET"),
            Context("aggregating", table, ""),
        )
        return result_of(checked, (dict, list), table)

    # --- metadata --------------------------------------------------------------

    def table_chain(self, table: str) -> list[str]:
        """``table`` and its ancestors, leaf first (``sys_db_object.super_class``)."""
        self._metadata.load_tables(self, [table])
        return self._metadata.chain(table)

    def dictionary(self, table: str) -> dict[str, FieldInfo]:
        """Every column of ``table`` including inherited ones, cached per client.

        Raises PermissionDeniedError when ``sys_dictionary`` answers with no rows:
        non-admin users typically get 200 and nothing (TABLE_API §11.2), which must
        not be mistaken for "the table has no fields".
        """
        if table not in self._dictionaries:
            chain = self.table_chain(table)
            self._metadata.load_columns(self, chain)
            self._dictionaries[table] = self._metadata.fields_of(chain)
        return self._dictionaries[table]

    def choices(self, table: str, element: str) -> dict[str, str]:
        """Choice value -> label for a field, falling back to parent tables (C08)."""
        chain = self.table_chain(table)
        self._metadata.load_choices(self, chain, [element])
        for owner in chain:
            found = self._metadata.own_choices(owner, element)
            if found:
                return found
        return {}

    def prefetch_metadata(
        self, tables: Sequence[str], label_fields: Mapping[str, Sequence[str]]
    ) -> None:
        """Read the dictionary of ``tables`` (and choice lists) in a few requests.

        ``label_fields`` maps a table to the fields whose choice lists are
        wanted; choices of its ancestors are read too (C08). Unknown tables
        are skipped here and reported when looked up.
        """
        meta = self._metadata
        meta.load_tables(self, tables)
        chains = {t: meta.chain(t) for t in tables if _known(meta, t)}
        meta.load_columns(self, {name for chain in chains.values() for name in chain})
        labelled = [t for t in label_fields if t in chains]
        owners = {name for t in labelled for name in chains[t]}
        elements = {f for t in labelled for f in label_fields[t]}
        if owners and elements:
            meta.load_choices(self, owners, elements)

    def metadata_snapshot(self) -> dict[str, Any] | None:
        """The metadata read so far, JSON-able, if the instance still has exactly it.

        Costs one request per metadata table (see :meth:`adopt_metadata`);
        None when something changed while it was read (read it again next time).
        """
        meta = self._metadata
        if not meta.settled():
            return None
        if read_signature(self, meta.signature_queries()) != meta.signature():
            return None
        return meta.to_json()

    def adopt_metadata(self, snapshot: Mapping[str, Any]) -> bool:
        """Use a saved :meth:`metadata_snapshot` if the instance still matches it.

        One request per metadata table: the same filters' ``X-Total-Count`` and
        newest ``sys_updated_on`` must equal the snapshot's. A dropped column
        lowers the count; an added or edited one brings a newer stamp.
        """
        saved = DataDictionary.from_json(snapshot)
        if saved is None or not saved.settled() or not saved.table_names:
            return False
        if read_signature(self, saved.signature_queries()) != saved.signature():
            logger.info("The instance's dictionary changed; reading it again")
            return False
        self._metadata = saved
        self._dictionaries.clear()
        return True

    @property
    def metadata_reads(self) -> int:
        """How many metadata reads this client made (to tell whether it read more)."""
        return self._metadata.reads

    # --- transport -------------------------------------------------------------

    def _call(
        self,
        method: str,
        api_path: str,
        params: Mapping[str, str | None],
        send: Callable[[Any], Any],
        context: Context,
        *,
        retry_on: Callable[[BaseException], bool] = is_retriable,
    ) -> CheckedResponse:
        """Send with retries; a 401 gets a token refresh and a replay.

        Workers share one token, and another thread's refresh or a revocation
        can land between this thread's refresh and its replay. So a refused
        replay gets one more refresh; a third refusal means the credentials
        themselves are refused (``AUTH_REFRESHES``).
        """
        context = Context(context.action, context.table, "/api/now" + api_path)

        def attempt() -> CheckedResponse:
            refreshes = 0
            while True:
                try:
                    return self._send_once(api_path, params, send, context)
                except UnauthorizedResponse as exc:
                    if not self._auth.can_refresh():
                        raise
                    if refreshes == AUTH_REFRESHES:
                        times = "once" if refreshes == 1 else f"{refreshes} times"
                        raise AuthError(
                            f"{exc} The token was refreshed {times} and still refused.",
                            status=401,
                            url=context.path,
                            snippet=exc.snippet,
                        ) from exc
                    refreshes += 1
                    self._auth.refresh_after_rejection(self._rejected_header())

        return self._retry.call(
            attempt, what=f"{method} {context.path}", retry_on=retry_on
        )

    def _send_once(
        self,
        api_path: str,
        params: Mapping[str, str | None],
        send: Callable[[Any], Any],
        context: Context,
    ) -> CheckedResponse:
        """One HTTP exchange through pysnow, then every check on the raw response."""
        resource = self._snow.resource(
            api_path=api_path, timeout=self.settings.timeout_seconds
        )
        resource.parameters.add_custom(dict(params))
        self._last_response = None
        try:
            send(resource)
        except requests.RequestException as exc:
            self.metrics.record_response(None, 0)
            raise error_for_transport(exc, context) from exc

        response = self._last_response
        if response is None:
            raise InstanceError(f"{context.describe()}: no response was captured.")
        self.metrics.record_response(response.status_code, len(response.content))
        return check_response(response, context)

    def _capture(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Session hook: remember the raw response pysnow would otherwise hide."""
        self._last_response = response

    def _rejected_header(self) -> str | None:
        response = self._last_response
        if response is None:
            return None
        return response.request.headers.get("Authorization")

    def _record_params(self, fields: Sequence[str] | None) -> dict[str, str | None]:
        return {
            **_PYSNOW_DEFAULTS_OFF,
            "sysparm_exclude_reference_link": "true",
            "sysparm_display_value": "false",
            "sysparm_fields": ",".join(fields) if fields else None,
        }

    def _warn_if_unverified(self) -> None:
        """One WARNING per client start instead of urllib3's one per request."""
        settings = self.settings
        if settings.verify_tls or settings.ca_file is not None:
            return
        warnings.filterwarnings("ignore", category=InsecureRequestWarning)
        if settings.url.startswith("https"):
            logger.warning(
                "TLS certificate verification is OFF for %s (instance.verify_tls: "
                "false); anyone on the path can read the credentials. Set "
                "instance.ca_file instead",
                urlsplit(self.settings.url).netloc,
            )


# pysnow sends its own defaults on every request (sysparm_limit=10000, an empty
# sysparm_view ...); None makes requests drop them where they do not belong.
_PYSNOW_DEFAULTS_OFF: dict[str, str | None] = {
    "sysparm_limit": None,
    "sysparm_view": None,
    "sysparm_suppress_pagination_header": None,
    "sysparm_query": None,
}


def _known(meta: DataDictionary, table: str) -> bool:
    return any(row["name"] == table for row in meta.tables.values())


def _check_page_options(display_value: str, limit: int, offset: int) -> None:
    if display_value not in DISPLAY_VALUES or limit < 1 or offset < 0:
        raise ValueError(
            f"get_page needs display_value in {sorted(DISPLAY_VALUES)}, "
            f"limit >= 1 and offset >= 0 (got {display_value!r}, {limit}, "
            f"{offset})."
        )


def _join(values: Sequence[str] | None) -> str | None:
    return ",".join(values) if values else None
