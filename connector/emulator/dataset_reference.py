"""Reference data of the emulated instance: responsibilities, products, survey.

These rows have fixed sys_ids (the same for every seed) because other code and
the default configuration name them: the NPS and CSAT questions, the survey
and the Account Manager responsibility.
"""

from __future__ import annotations

from connector.emulator.dataset_support import Sink, fixed_sys_id

SURVEY_TYPE_ID = "4f1c2d3a8b9e4c0d9a7b6e5f4c3d2e1a"
NPS_METRIC_ID = "a8e2f1c04b3d4e6f8a9b0c1d2e3f4a5b"
CSAT_METRIC_ID = "c5d4e3f2a1b04c9d8e7f6a5b4c3d2e1f"
COMMENT_METRIC_ID = "e1f2a3b4c5d64e7f8a9b0c1d2e3f4a50"
ACCOUNT_MANAGER_RESPONSIBILITY_ID = "9b8a7c6d5e4f4a3b2c1d0e9f8a7b6c5d"
SUPPORT_MANAGER_RESPONSIBILITY_ID = "7d6c5b4a39284f1e0d9c8b7a6f5e4d3c"
PRIMARY_AGENT_RESPONSIBILITY_ID = "3c2b1a0f9e8d4c7b6a5f4e3d2c1b0a99"

RESPONSIBILITIES = (
    (ACCOUNT_MANAGER_RESPONSIBILITY_ID, "Account Manager"),
    (SUPPORT_MANAGER_RESPONSIBILITY_ID, "Support Manager"),
    (PRIMARY_AGENT_RESPONSIBILITY_ID, "Primary Support Agent"),
)

# (name, list price per seat per year, share of the account's seats it covers)
PRODUCTS = (
    ("Nimbus Service Desk", 540.0, 1.0),
    ("Nimbus Field Service", 720.0, 0.6),
    ("Nimbus Analytics", 300.0, 0.5),
    ("Nimbus Knowledge Base", 120.0, 1.0),
    ("Nimbus Customer Portal", 180.0, 1.0),
    ("Nimbus Workflow Studio", 660.0, 0.4),
    ("Nimbus Asset Tracker", 240.0, 0.7),
    ("Nimbus Integration Hub", 900.0, 0.2),
    ("Nimbus Mobile Agent", 150.0, 0.8),
    ("Nimbus Security Suite", 480.0, 0.9),
    ("Nimbus Billing Connector", 360.0, 0.3),
    ("Nimbus AI Assist", 840.0, 0.5),
)
PRODUCT_IDS = tuple(fixed_sys_id(f"cmdb_model:{name}") for name, _, _ in PRODUCTS)

_SURVEY_NAME = "Customer Service Satisfaction Survey"
_METRICS = (
    (
        NPS_METRIC_ID,
        "Likelihood to recommend",
        "How likely are you to recommend us to a friend or colleague?",
        "template",
        ("0", "10"),
    ),
    (
        CSAT_METRIC_ID,
        "Case satisfaction",
        "How satisfied are you with the handling of your case?",
        "scale",
        ("1", "5"),
    ),
    (
        COMMENT_METRIC_ID,
        "Comments",
        "Anything else you want to tell us?",
        "string",
        ("", ""),
    ),
)


def nps_definition_value(score: int) -> str:
    """Stored value of an NPS answer: the scale was migrated, 0..10 became 1..11.

    Migrated questions number their definitions from choice order starting at 1
    (case C15), so ``actual_value`` is the score plus one, not the score.
    """
    return str(score + 1)


def emit_reference(sink: Sink, stamp: str) -> None:
    """Responsibilities, product models and the survey with its questions."""
    setup = ((stamp, stamp), ("admin", "admin"))
    for sys_id, name in RESPONSIBILITIES:
        sink.add("sn_customerservice_responsibility", sys_id, *setup, 0, {"name": name})
    for sys_id, (name, _, _) in zip(PRODUCT_IDS, PRODUCTS, strict=True):
        sink.add("cmdb_model", sys_id, *setup, 0, {"name": name})
    sink.add(
        "asmt_metric_type",
        SURVEY_TYPE_ID,
        *setup,
        1,
        {"name": _SURVEY_NAME, "evaluation_method": "survey"},
    )
    for sys_id, name, question, datatype, (low, high) in _METRICS:
        sink.add(
            "asmt_metric",
            sys_id,
            *setup,
            2,
            {
                "name": name,
                "question": question,
                "metric_type": SURVEY_TYPE_ID,
                "datatype": datatype,
                "min": low,
                "max": high,
            },
        )
    _emit_definitions(sink, setup)


def _emit_definitions(sink: Sink, setup: tuple) -> None:
    """Answer options: NPS on the migrated 1..11 values, CSAT 1..5 as shown."""
    for score in range(11):
        sink.add(
            "asmt_metric_definition",
            fixed_sys_id(f"nps:{score}"),
            *setup,
            0,
            {
                "metric": NPS_METRIC_ID,
                "display": str(score),
                "value": nps_definition_value(score),
            },
        )
    for score in range(1, 6):
        sink.add(
            "asmt_metric_definition",
            fixed_sys_id(f"csat:{score}"),
            *setup,
            0,
            {"metric": CSAT_METRIC_ID, "display": str(score), "value": str(score)},
        )
