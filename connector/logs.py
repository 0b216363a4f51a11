"""Logging for every csm-sync process: text or JSON lines, run context, redaction.

Each record carries ``run_id`` and ``table`` from context variables, so every line of
a run can be traced without each module passing ids around. A redaction filter on the
handler masks configured secrets (and anything shaped like a credential) in the
message and the traceback before any formatter sees them.

Use :func:`log_context` around a unit of work::

    with log_context(run_id="a1b2c3", table="customer_account"):
        ...
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Literal, TextIO

from pythonjsonlogger.json import JsonFormatter

MASK = "***"
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(run_id)s %(table)s] %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(run_id)s %(table)s"
NO_CONTEXT = "-"

# Shapes that carry a credential whatever its value: Authorization headers,
# OAuth token fields and key=value pairs in URLs or reprs.
_CREDENTIAL_PATTERNS = (
    re.compile(
        r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?(?:basic|bearer)\s+)[^\s'\",]+"
    ),
    re.compile(
        r"(?i)((?:password|passwd|client_secret|access_token|refresh_token|token)"
        r"['\"]?\s*[:=]\s*['\"]?)([^\s'\"&,;}]+)"
    ),
)

_run_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "csm_sync_run_id", default=None
)
_table: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "csm_sync_table", default=None
)
# Worker threads (backfill slices, scheduler pools) do not inherit context
# variables; the process-wide run id fills in for them while a run is active.
_process_run_id: str | None = None


def new_run_id() -> str:
    """Return a short random id for one run."""
    return uuid.uuid4().hex[:12]


@contextmanager
def log_context(
    *, run_id: str | None = None, table: str | None = None, process_wide: bool = False
) -> Iterator[str | None]:
    """Tag every record logged inside the block with ``run_id`` and/or ``table``.

    Args:
        run_id: The run id; None keeps the current one.
        table: The table being worked on; None keeps the current one.
        process_wide: Also use ``run_id`` for threads that did not inherit the
            context (worker pools). Only one such run may be active at a time.

    Yields:
        The run id in effect inside the block.
    """
    global _process_run_id
    tokens = []
    if run_id is not None:
        tokens.append((_run_id, _run_id.set(run_id)))
    if table is not None:
        tokens.append((_table, _table.set(table)))
    previous = _process_run_id
    if process_wide and run_id is not None:
        _process_run_id = run_id
    try:
        yield current_run_id()
    finally:
        if process_wide and run_id is not None:
            _process_run_id = previous
        for var, token in reversed(tokens):
            var.reset(token)


def current_run_id() -> str | None:
    """Return the run id of the calling context, if any."""
    return _run_id.get() or _process_run_id


class ContextFilter(logging.Filter):
    """Add ``run_id`` and ``table`` attributes to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "run_id", None):
            record.run_id = current_run_id() or NO_CONTEXT
        if not getattr(record, "table", None):
            record.table = _table.get() or NO_CONTEXT
        return True


class Redactor:
    """Masks known secret values and credential-shaped text in a string."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first so a secret containing another is masked whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 3}, key=len)[::-1]

    def add(self, secret: str | None) -> None:
        """Start masking one more value (for example a freshly issued token)."""
        if secret and len(secret) >= 3 and secret not in self._secrets:
            self._secrets = sorted([*self._secrets, secret], key=len)[::-1]

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        for pattern in _CREDENTIAL_PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
        return text


class RedactingFilter(logging.Filter):
    """Render each record's message and traceback once, with secrets masked."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor(record.getMessage())
        record.args = None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self.redactor(text)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self.redactor(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor(record.stack_info)
        return True


def build_handler(
    *,
    fmt: Literal["text", "json"],
    redactor: Redactor,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Return a stream handler with context, redaction and the chosen format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter(redactor))
    if fmt == "json":
        formatter: logging.Formatter = JsonFormatter(
            JSON_FIELDS,
            rename_fields={"levelname": "level", "asctime": "time", "name": "logger"},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
        )
    else:
        formatter = logging.Formatter(TEXT_FORMAT, datefmt="%Y-%m-%d %H:%M:%S")
    handler.setFormatter(formatter)
    return handler


def setup_logging(
    *,
    level: str = "INFO",
    fmt: Literal["text", "json"] = "text",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> Redactor:
    """Configure the root logger once for a csm-sync process.

    Returns:
        The redactor, so callers can add secrets learned later (tokens).
    """
    redactor = Redactor(secrets)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_csm_sync", False)]:
        root.removeHandler(old)
    handler = build_handler(fmt=fmt, redactor=redactor, stream=stream)
    handler._csm_sync = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # Third-party lifecycle chatter (per request, per job added, per migration
    # plugin) would drown the one summary line per table.
    for noisy in ("urllib3", "apscheduler.scheduler", "werkzeug", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return redactor


def settings_secrets(settings: object) -> list[str]:
    """Collect every secret value in a Settings object (any SecretStr, any depth)."""
    from pydantic import BaseModel, SecretStr

    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(settings)
    return [s for s in found if s]
