"""Internal tables of the sync: cursors, backfill checkpoints, run records, quarantine.

These are csm-sync's own bookkeeping, beside the canonical tables. All timestamps
are UTC and timezone-aware (sqlmodel's ``UTCDateTime``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class SyncState(SQLModel, table=True):
    """Per mapping: where incremental sync and delete detection stand."""

    __tablename__ = "sync_state"
    mapping: str = Field(primary_key=True, max_length=100)
    source_table: str = Field(max_length=80)
    # Compound cursor (C01/C02): the last stored row's (sys_updated_on, sys_id).
    cursor_ts: datetime | None = None
    cursor_sys_id: str | None = Field(default=None, max_length=32)
    # sys_audit DELETED/RECOVERED rows already applied (sys_created_on, sys_id).
    delete_cursor_ts: datetime | None = None
    delete_cursor_sys_id: str | None = Field(default=None, max_length=32)
    last_reconcile_at: datetime | None = None
    last_validated_at: datetime | None = None


class BackfillSlice(SQLModel, table=True):
    """One time slice of a backfill and how far it got (checkpoint)."""

    __tablename__ = "backfill_slice"
    __table_args__ = (
        UniqueConstraint("mapping", "slice_start", name="uq_backfill_slice"),
    )
    id: int | None = Field(default=None, primary_key=True)
    mapping: str = Field(index=True, max_length=100)
    job_since: datetime
    job_until: datetime
    slice_start: datetime
    slice_end: datetime
    cursor_ts: datetime | None = None
    cursor_sys_id: str | None = Field(default=None, max_length=32)
    rows: int = 0
    done: bool = False


class SyncRun(SQLModel, table=True):
    """One run of one mapping: what it did and how it ended."""

    __tablename__ = "sync_run"
    id: int | None = Field(default=None, primary_key=True)
    mapping: str = Field(index=True, max_length=100)
    source_table: str = Field(max_length=80)
    mode: str = Field(max_length=20)  # incremental | backfill | deletes | reconcile
    window_start: datetime | None = None
    window_end: datetime | None = None
    started_at: datetime
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    pages: int = 0
    rows_fetched: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    rows_deleted: int = 0
    rows_quarantined: int = 0
    retries: int = 0
    outcome: str = Field(default="running", max_length=20)  # ok | failed | stopped
    error: str | None = Field(default=None, sa_column=Column(Text))


class QuarantinedRow(SQLModel, table=True):
    """A source row that could not be mapped; kept until a later version maps."""

    __tablename__ = "quarantine"
    __table_args__ = (
        UniqueConstraint("mapping", "sys_id", "field", name="uq_quarantine_row_field"),
    )
    id: int | None = Field(default=None, primary_key=True)
    mapping: str = Field(index=True, max_length=100)
    source_table: str = Field(max_length=80)
    sys_id: str = Field(max_length=64)
    field: str = Field(max_length=120)
    raw_value: str | None = Field(default=None, sa_column=Column(Text))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    run_id: int | None = None
    seen_at: datetime


class MetadataCache(SQLModel, table=True):
    """The instance's dictionary and choice lists as last read and verified.

    A sync re-reads them only when the instance reports a different row count
    or newest ``sys_updated_on`` for the same filters (connector.servicenow.
    metadata); ``csm-sync check`` always reads them fresh.
    """

    __tablename__ = "metadata_cache"
    instance: str = Field(primary_key=True, max_length=255)
    snapshot: str = Field(sa_column=Column(Text, nullable=False))
    saved_at: datetime
