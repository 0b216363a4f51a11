"""Canonical store tables: the contract between mappings and KPIs.

Each table holds one mapped ServiceNow table. Mappings fill these columns; the KPI
SQL reads only these columns. Every table carries the same bookkeeping columns
(:class:`SyncedRecord`). Choice columns keep the raw code; a ``*_label`` column
beside it holds the label when the mapping asks for it (case C08).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Numeric
from sqlmodel import Field, SQLModel

SYS_ID = 32


def _money() -> Any:
    return Field(default=None, sa_column=Column(Numeric(18, 2)))


def _int() -> Any:
    # Source integers are 64-bit in ServiceNow (longint, durations past 2038);
    # PostgreSQL's INTEGER is 32-bit, so a large value would abort the whole page.
    return Field(default=None, sa_type=BigInteger)


def _num() -> Any:
    return Field(default=None, sa_column=Column(Numeric(18, 4)))


class SyncedRecord(SQLModel):
    """Columns every canonical table has."""

    sys_id: str = Field(primary_key=True, max_length=SYS_ID)
    sys_created_on: datetime | None = None
    sys_updated_on: datetime | None = Field(default=None, index=True)
    deleted_at: datetime | None = Field(default=None, index=True)
    # sa_type, not sa_column: a Column object cannot be shared by every table.
    extra: dict | None = Field(default=None, sa_type=JSON)


class Account(SyncedRecord, table=True):
    """customer_account."""

    __tablename__ = "account"
    number: str | None = None
    name: str | None = None
    customer: bool | None = None
    active: bool | None = None
    rank_tier: str | None = None
    rank_tier_label: str | None = None
    country: str | None = None
    account_parent: str | None = Field(default=None, max_length=SYS_ID)
    primary_contact: str | None = Field(default=None, max_length=SYS_ID)


class Contact(SyncedRecord, table=True):
    """customer_contact (extends sys_user: its sys_id is also a user id)."""

    __tablename__ = "contact"
    account: str | None = Field(default=None, index=True, max_length=SYS_ID)
    name: str | None = None
    email: str | None = None
    active: bool | None = None
    vip: bool | None = None


class User(SyncedRecord, table=True):
    """sys_user: agents and customer-success managers."""

    __tablename__ = "sn_user"
    user_name: str | None = None
    name: str | None = None
    email: str | None = None
    title: str | None = None
    active: bool | None = None


class TeamMember(SyncedRecord, table=True):
    """sn_customerservice_team_member: who looks after an account, and as what."""

    __tablename__ = "team_member"
    account: str | None = Field(default=None, index=True, max_length=SYS_ID)
    user: str | None = Field(default=None, index=True, max_length=SYS_ID)
    responsibility: str | None = Field(default=None, max_length=SYS_ID)
    responsibility_name: str | None = None


class Case(SyncedRecord, table=True):
    """sn_customerservice_case."""

    __tablename__ = "case"
    number: str | None = None
    account: str | None = Field(default=None, index=True, max_length=SYS_ID)
    contact: str | None = Field(default=None, max_length=SYS_ID)
    product: str | None = Field(default=None, max_length=SYS_ID)
    state: str | None = None
    state_label: str | None = None
    priority: int | None = _int()
    channel: str | None = None
    channel_label: str | None = None
    category: str | None = None
    opened_at: datetime | None = Field(default=None, index=True)
    resolved_at: datetime | None = Field(default=None, index=True)
    closed_at: datetime | None = None
    reassignment_count: int | None = _int()
    assigned_to: str | None = Field(default=None, max_length=SYS_ID)
    made_sla: bool | None = None
    escalation: int | None = _int()
    business_duration: int | None = _int()
    parent: str | None = Field(default=None, max_length=SYS_ID)


class CaseStateChange(SyncedRecord, table=True):
    """sys_audit rows of case state changes (reopen / awaiting-info history)."""

    __tablename__ = "case_state_change"
    case: str | None = Field(default=None, index=True, max_length=SYS_ID)
    old_state: str | None = None
    new_state: str | None = None
    changed_at: datetime | None = None


class Interaction(SyncedRecord, table=True):
    """interaction."""

    __tablename__ = "interaction"
    number: str | None = None
    type: str | None = None
    state: str | None = None
    account: str | None = Field(default=None, index=True, max_length=SYS_ID)
    contact: str | None = Field(default=None, max_length=SYS_ID)
    opened_at: datetime | None = Field(default=None, index=True)
    closed_at: datetime | None = None
    assigned_to: str | None = Field(default=None, max_length=SYS_ID)
    direction: str | None = None


class InteractionLink(SyncedRecord, table=True):
    """interaction_related_record: links an interaction to a case (or article)."""

    __tablename__ = "interaction_link"
    interaction: str | None = Field(default=None, index=True, max_length=SYS_ID)
    document_table: str | None = None
    document_id: str | None = Field(default=None, index=True, max_length=SYS_ID)
    type: str | None = None


class SurveyQuestion(SyncedRecord, table=True):
    """asmt_metric: one survey question (NPS, CSAT, ...)."""

    __tablename__ = "survey_question"
    name: str | None = None
    metric_type: str | None = Field(default=None, max_length=SYS_ID)
    datatype: str | None = None
    scale_min: int | None = _int()
    scale_max: int | None = _int()


class SurveyAnswerOption(SyncedRecord, table=True):
    """asmt_metric_definition: a stored answer value and its displayed score (C15)."""

    __tablename__ = "survey_answer_option"
    metric: str | None = Field(default=None, index=True, max_length=SYS_ID)
    display: str | None = None
    value: Decimal | None = _num()


class SurveyInstance(SyncedRecord, table=True):
    """asmt_assessment_instance: one questionnaire sent to one respondent."""

    __tablename__ = "survey_instance"
    number: str | None = None
    metric_type: str | None = Field(default=None, max_length=SYS_ID)
    user: str | None = Field(default=None, index=True, max_length=SYS_ID)
    state: str | None = None
    taken_on: datetime | None = Field(default=None, index=True)
    trigger_id: str | None = Field(default=None, max_length=SYS_ID)
    trigger_table: str | None = None


class SurveyResult(SyncedRecord, table=True):
    """asmt_metric_result: one answer to one question on one instance."""

    __tablename__ = "survey_result"
    instance: str | None = Field(default=None, index=True, max_length=SYS_ID)
    metric: str | None = Field(default=None, index=True, max_length=SYS_ID)
    actual_value: Decimal | None = _num()
    string_value: str | None = None


class SoldProduct(SyncedRecord, table=True):
    """sn_install_base_sold_product: what an account bought, how long, at what price."""

    __tablename__ = "sold_product"
    number: str | None = None
    name: str | None = None
    account: str | None = Field(default=None, index=True, max_length=SYS_ID)
    product: str | None = Field(default=None, max_length=SYS_ID)
    quantity: int | None = _int()
    state: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    annual_price: Decimal | None = _money()


class Entitlement(SyncedRecord, table=True):
    """service_entitlement."""

    __tablename__ = "entitlement"
    name: str | None = None
    account: str | None = Field(default=None, index=True, max_length=SYS_ID)
    product: str | None = Field(default=None, max_length=SYS_ID)
    sold_product: str | None = Field(default=None, max_length=SYS_ID)
    state: str | None = None
    start_date: date | None = None
    end_date: date | None = None


class EntitlementUsage(SyncedRecord, table=True):
    """sn_pss_core_entitlement_usage: used vs total units per period."""

    __tablename__ = "entitlement_usage"
    entitlement: str | None = Field(default=None, index=True, max_length=SYS_ID)
    account: str | None = Field(default=None, index=True, max_length=SYS_ID)
    period_start: date | None = Field(default=None, index=True)
    period_end: date | None = None
    total_units: int | None = _int()
    used_units: int | None = _int()


class Choice(SyncedRecord, table=True):
    """sys_choice: labels of choice codes per table and field."""

    __tablename__ = "choice"
    table_name: str | None = Field(default=None, index=True)
    element: str | None = None
    value: str | None = None
    label: str | None = None
    sequence: int | None = _int()
    language: str | None = None
    inactive: bool | None = None


CANONICAL_MODELS: dict[str, type[SyncedRecord]] = {
    model.__tablename__: model  # type: ignore[misc]
    for model in (
        Account,
        Contact,
        User,
        TeamMember,
        Case,
        CaseStateChange,
        Interaction,
        InteractionLink,
        SurveyQuestion,
        SurveyAnswerOption,
        SurveyInstance,
        SurveyResult,
        SoldProduct,
        Entitlement,
        EntitlementUsage,
        Choice,
    )
}
"""Canonical table name → model; mapping files name their target by these keys."""
