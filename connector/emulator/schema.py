"""The emulated instance's data dictionary: tables, fields, types and choices.

This is what the emulator serves as ``sys_db_object``, ``sys_dictionary`` and
``sys_choice``, and what it uses to type comparisons in encoded queries. Names
follow ``shared/servicenow/CSM_MODEL.md``; where that file marks a column name
unconfirmed, the pick made here is recorded in the dictionary like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldDef:
    """One column: ``internal_type`` as ServiceNow names it, and its target table."""

    name: str
    internal_type: str = "string"
    reference: str | None = None
    max_length: int = 40
    label: str | None = None
    choices: tuple[tuple[str, str], ...] = ()
    display: bool = False


@dataclass(frozen=True)
class TableDef:
    """One table; ``parent`` is its ``super_class`` (fields are inherited).

    ``audited`` is the Audit flag of the table's collection entry: deleting one
    of its records keeps the record in ``sys_audit_delete`` (TABLE_API.md §11.4).
    It is per table, not inherited, because the platform files a deletion under
    the record's own class. The audited tables are the CSM business tables a
    customer keeps history of (case, account, contact, interaction, sold
    product, entitlement). Left unaudited: ``sys_*`` tables (not tracked by
    default), the reference and survey tables (``asmt_*``: high-volume, not
    audited out of the box) and tables created over the API. Every delete,
    audited or not, still writes its ``sys_audit`` DELETED row.
    """

    name: str
    label: str
    parent: str | None = None
    fields: tuple[FieldDef, ...] = field(default_factory=tuple)
    audited: bool = False


def F(
    name: str, internal_type: str = "string", ref: str | None = None, **kw
) -> FieldDef:
    return FieldDef(name, internal_type, ref, **kw)


# Standard system fields every table has (sys_id, timestamps, counters).
SYSTEM_FIELDS = (
    F("sys_id", "GUID", max_length=32),
    F("sys_created_on", "glide_date_time"),
    F("sys_created_by", "string"),
    F("sys_updated_on", "glide_date_time"),
    F("sys_updated_by", "string"),
    F("sys_mod_count", "integer"),
    F("sys_tags", "string"),
)

CASE_STATES = (
    ("1", "New"),
    ("10", "Open"),
    ("18", "Awaiting Info"),
    ("6", "Resolved"),
    ("3", "Closed"),
    ("7", "Cancelled"),
)
PRIORITIES = (
    ("1", "1 - Critical"),
    ("2", "2 - High"),
    ("3", "3 - Moderate"),
    ("4", "4 - Low"),
)
CHANNELS = (
    ("phone", "Phone"),
    ("email", "Email"),
    ("web", "Web"),
    ("chat", "Chat"),
    ("social", "Social"),
)
CONTRACT_STATES = (
    ("draft", "Draft"),
    ("active", "Active"),
    ("expired", "Expired"),
    ("cancelled", "Cancelled"),
    ("suspended", "Suspended"),
)

TABLES: tuple[TableDef, ...] = (
    TableDef(
        "sys_user",
        "User",
        fields=(
            F("user_name", max_length=40),
            F("name", max_length=151, display=True),
            F("first_name", max_length=50),
            F("last_name", max_length=50),
            F("email", "email", max_length=100),
            F("title", max_length=60),
            F("active", "boolean"),
            F("manager", "reference", "sys_user"),
            F("company", "reference", "core_company"),
            F("last_login_time", "glide_date_time"),
        ),
    ),
    TableDef(
        "core_company",
        "Company",
        fields=(
            F("name", max_length=80, display=True),
            F("city", max_length=40),
            F("country", max_length=40),
            F("parent", "reference", "core_company"),
            F("customer", "boolean"),
            F("partner", "boolean"),
        ),
    ),
    TableDef(
        "customer_account",
        "Account",
        audited=True,
        parent="core_company",
        fields=(
            F("number", max_length=40),
            F("account_code", max_length=255),
            F("account_parent", "reference", "customer_account"),
            F("primary_contact", "reference", "customer_contact"),
            F(
                "rank_tier",
                "choice",
                choices=(
                    ("strategic", "Strategic"),
                    ("valued", "Valued"),
                    ("tactical", "Tactical"),
                    ("other", "Other"),
                    ("blacklist", "Blacklist"),
                ),
            ),
            F("active", "boolean"),
            F("revenue_per_year", "currency"),
            F("notes", max_length=4000),
        ),
    ),
    TableDef(
        "customer_contact",
        "Contact",
        audited=True,
        parent="sys_user",
        fields=(
            F("account", "reference", "customer_account"),
            F("phone", max_length=40),
            F("vip", "boolean"),
        ),
    ),
    TableDef(
        "sn_customerservice_responsibility",
        "Responsibility",
        fields=(F("name", max_length=80, display=True),),
    ),
    TableDef(
        "sn_customerservice_team_member",
        "Account Team Member",
        fields=(
            F("account", "reference", "customer_account"),
            F("user", "reference", "sys_user"),
            F("responsibility", "reference", "sn_customerservice_responsibility"),
        ),
    ),
    TableDef(
        "cmdb_model", "Product Model", fields=(F("name", max_length=100, display=True),)
    ),
    TableDef(
        "task",
        "Task",
        fields=(
            F("number", max_length=40, display=True),
            F("short_description", max_length=160),
            F("state", "integer", choices=CASE_STATES),
            F("active", "boolean"),
            F("priority", "integer", choices=PRIORITIES),
            F("opened_at", "glide_date_time"),
            F("closed_at", "glide_date_time"),
            F("assigned_to", "reference", "sys_user"),
            F("reassignment_count", "integer"),
            F("made_sla", "boolean"),
            F(
                "escalation",
                "integer",
                choices=(
                    ("0", "Normal"),
                    ("1", "Moderate"),
                    ("2", "High"),
                    ("3", "Overdue"),
                ),
            ),
            F("business_duration", "glide_duration"),
            F("parent", "reference", "task"),
            F("contact_type", "choice", choices=CHANNELS),
            F("sys_class_name", "sys_class_name", max_length=80),
        ),
    ),
    TableDef(
        "sn_customerservice_case",
        "Case",
        audited=True,
        parent="task",
        fields=(
            F("account", "reference", "customer_account"),
            F("contact", "reference", "customer_contact"),
            F("product", "reference", "cmdb_model"),
            F(
                "category",
                "integer",
                choices=(("0", "Question"), ("1", "Issue"), ("2", "Feature")),
            ),
            F("resolved_at", "glide_date_time"),
            F("resolution_code", max_length=40),
        ),
    ),
    TableDef(
        "interaction",
        "Interaction",
        audited=True,
        fields=(
            F("number", max_length=40, display=True),
            F(
                "type",
                "choice",
                choices=(
                    ("chat", "Chat"),
                    ("phone", "Phone"),
                    ("email", "Email"),
                    ("walkup", "Walk-up"),
                    ("messaging", "Messaging"),
                ),
            ),
            F(
                "state",
                "choice",
                choices=(
                    ("new", "New"),
                    ("work_in_progress", "Work in Progress"),
                    ("closed_complete", "Closed Complete"),
                    ("closed_abandoned", "Closed Abandoned"),
                ),
            ),
            F("account", "reference", "customer_account"),
            F("contact", "reference", "customer_contact"),
            F("opened_at", "glide_date_time"),
            F("closed_at", "glide_date_time"),
            F("assigned_to", "reference", "sys_user"),
            F(
                "direction",
                "choice",
                choices=(("inbound", "Inbound"), ("outbound", "Outbound")),
            ),
            F("short_description", max_length=160),
        ),
    ),
    TableDef(
        "interaction_related_record",
        "Interaction Related Record",
        fields=(
            F("interaction", "reference", "interaction"),
            F("document_table", "table_name", max_length=80),
            F("document_id", "document_id", max_length=32),
            F("task", "reference", "task"),
            F("type", "choice", choices=(("task", "Task"), ("knowledge", "Knowledge"))),
        ),
    ),
    TableDef(
        "asmt_metric_type",
        "Metric Type",
        fields=(
            F("name", max_length=100, display=True),
            F(
                "evaluation_method",
                "choice",
                choices=(("survey", "Survey"), ("assessment", "Assessment")),
            ),
        ),
    ),
    TableDef(
        "asmt_metric",
        "Metric",
        fields=(
            F("name", max_length=100, display=True),
            F("question", max_length=255),
            F("metric_type", "reference", "asmt_metric_type"),
            F(
                "datatype",
                "choice",
                choices=(
                    ("template", "Template"),
                    ("scale", "Scale"),
                    ("string", "String"),
                    ("boolean", "Yes / No"),
                ),
            ),
            F("min", "integer"),
            F("max", "integer"),
        ),
    ),
    TableDef(
        "asmt_metric_definition",
        "Metric Definition",
        fields=(
            F("metric", "reference", "asmt_metric"),
            F("display", max_length=100, display=True),
            F("value", "decimal"),
        ),
    ),
    TableDef(
        "asmt_assessment_instance",
        "Assessment Instance",
        fields=(
            F("number", max_length=40, display=True),
            F("metric_type", "reference", "asmt_metric_type"),
            F("user", "reference", "sys_user"),
            F(
                "state",
                "choice",
                choices=(
                    ("ready", "Ready to take"),
                    ("wip", "In progress"),
                    ("complete", "Complete"),
                    ("canceled", "Canceled"),
                ),
            ),
            F("taken_on", "glide_date_time"),
            F("due_date", "glide_date_time"),
            F("trigger_id", "document_id", max_length=32),
            F("trigger_table", "table_name", max_length=80),
        ),
    ),
    TableDef(
        "asmt_metric_result",
        "Metric Result",
        fields=(
            F("instance", "reference", "asmt_assessment_instance"),
            F("metric", "reference", "asmt_metric"),
            F("actual_value", "decimal"),
            F("normalized_value", "decimal"),
            F("string_value", max_length=4000),
        ),
    ),
    TableDef(
        "sn_install_base_sold_product",
        "Sold Product",
        audited=True,
        fields=(
            F("number", max_length=40, display=True),
            F("name", max_length=100),
            F("account", "reference", "customer_account"),
            F("product", "reference", "cmdb_model"),
            F("quantity", "integer"),
            F("state", "choice", choices=CONTRACT_STATES),
            F("start_date", "glide_date"),
            F("end_date", "glide_date"),
            F("annual_recurring_price", "currency", label="Annual recurring price"),
        ),
    ),
    TableDef(
        "service_entitlement",
        "Entitlement",
        audited=True,
        fields=(
            F("entitlement_name", max_length=100, display=True),
            F("account", "reference", "customer_account"),
            F("product", "reference", "cmdb_model"),
            F("sold_product", "reference", "sn_install_base_sold_product"),
            F("state", "choice", choices=CONTRACT_STATES),
            F("start_date", "glide_date"),
            F("end_date", "glide_date"),
        ),
    ),
    TableDef(
        "sn_pss_core_entitlement_usage",
        "Entitlement Usage",
        fields=(
            F("entitlement", "reference", "service_entitlement"),
            F("period_start", "glide_date"),
            F("period_end", "glide_date"),
            F("total_units", "integer"),
            F("used_units", "integer"),
        ),
    ),
    # --- metadata tables ---------------------------------------------------
    TableDef(
        "sys_db_object",
        "Table",
        fields=(
            F("name", max_length=80, display=True),
            F("label", max_length=80),
            F("super_class", "reference", "sys_db_object"),
        ),
    ),
    TableDef(
        "sys_dictionary",
        "Dictionary Entry",
        fields=(
            F("name", "table_name", max_length=80),
            F("element", max_length=80),
            F("column_label", max_length=80),
            F("internal_type", max_length=40),
            F("max_length", "integer"),
            F("reference", "table_name", max_length=80),
            F("mandatory", "boolean"),
            F("read_only", "boolean"),
            F("display", "boolean"),
            F("active", "boolean"),
            F("choice", "integer"),
        ),
    ),
    TableDef(
        "sys_choice",
        "Choice",
        fields=(
            F("name", "table_name", max_length=80),
            F("element", max_length=80),
            F("value", max_length=40),
            F("label", max_length=100, display=True),
            F("sequence", "integer"),
            F("language", max_length=10),
            F("inactive", "boolean"),
        ),
    ),
    TableDef(
        "sys_audit",
        "Audit",
        fields=(
            F("tablename", max_length=80),
            F("documentkey", max_length=32),
            F("fieldname", max_length=80),
            F("oldvalue", max_length=4000),
            F("newvalue", max_length=4000),
            F("user", max_length=40),
            F("reason", max_length=255),
            F("record_checkpoint", "integer"),
        ),
    ),
    TableDef(
        "sys_audit_delete",
        "Deleted Records",
        fields=(
            F("tablename", "table_name", max_length=80),
            F("documentkey", "GUID", max_length=32),
            F("display_value", max_length=255, display=True),
            # The deleted record as XML, what "Undelete Record" restores from.
            F("payload", "xml", max_length=65000),
        ),
    ),
    TableDef(
        "sys_ui_element",
        "Form Element",
        fields=(
            F("name", "table_name", max_length=80),
            F("element", max_length=80),
            F("position", "integer"),
            F("sys_ui_section", max_length=32),
        ),
    ),
    TableDef(
        "sys_ui_list_element",
        "List Element",
        fields=(
            F("name", "table_name", max_length=80),
            F("element", max_length=80),
            F("position", "integer"),
            F("list_id", max_length=32),
        ),
    ),
)

TABLES_BY_NAME: dict[str, TableDef] = {t.name: t for t in TABLES}
AUDITED_TABLES: frozenset[str] = frozenset(t.name for t in TABLES if t.audited)
