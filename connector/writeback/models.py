"""Store tables of write-back: what the instance holds, and every attempt.

``writeback_state`` is the memory that keeps write-back quiet: one row per
account and field with the normalised value last confirmed on the instance and
the raw value the instance returned for it. ``writeback_log`` is the audit
trail: one row per field per attempt, failures included.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Field, SQLModel

SYS_ID = 32


class WritebackState(SQLModel, table=True):
    """The value of one account field as last confirmed on the instance.

    ``value`` is normalised (see :mod:`normalise`); ``returned`` is the raw
    string the instance answered, which a sanitising rule may have rewritten.
    """

    __tablename__ = "writeback_state"
    account: str = Field(primary_key=True, max_length=SYS_ID)
    field: str = Field(primary_key=True, max_length=80)
    value: str = ""
    returned: str = ""
    source: str = "write"
    confirmed_at: datetime


class WritebackLog(SQLModel, table=True):
    """One attempted field write (or a refused one) and how it ended."""

    __tablename__ = "writeback_log"
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(index=True, max_length=32)
    table_name: str = Field(max_length=80)
    account: str = Field(index=True, max_length=SYS_ID)
    field: str = Field(max_length=80)
    old_value: str = ""
    new_value: str = ""
    returned: str | None = None
    outcome: str = Field(index=True, max_length=16)
    message: str = ""
    at: datetime = Field(index=True)


WRITEBACK_TABLES = (WritebackState.__table__, WritebackLog.__table__)


def ensure_tables(engine: Engine) -> None:
    """Create the write-back tables when migrations have not (idempotent)."""
    SQLModel.metadata.create_all(engine, tables=list(WRITEBACK_TABLES))
