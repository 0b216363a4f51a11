"""NPS and CSAT from survey answers (case C15: ``actual_value`` is not the score).

Answer rules, shared by both KPIs:

* only answers to the configured question (``asmt_metric`` sys_id, never a name);
* only ``complete`` instances whose ``taken_on`` is inside the window;
* ``actual_value`` is translated through the question's answer options
  (``value`` → ``display``) when the question has options — a migrated 0–10 scale
  stores 1–11 — and an unmatched value is dropped; without options it is the score;
* dropped: ``string_value = 'N/A'``, negative or empty values, scores outside the
  question's scale;
* one answer per (instance, question): the latest ``sys_updated_on`` among the
  valid ones wins, so a duplicate row or a later 'N/A' row never double-counts;
* the respondent is the instance's ``user`` (a contact); the account is the
  contact's account, else the account of the case that triggered the survey.

NPS keeps the latest answer per respondent in its window (365 days); CSAT keeps
every answer in its window (90 days), one per case survey.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from connector.kpi.sql import CASE_TABLE, Scoped, csm_join, fetch, fetch_scoped

log = logging.getLogger(__name__)

NPS_SCALE = (0.0, 10.0)
CANDIDATES_SHOWN = 20
DEFAULT_CSAT_SCALE = (1.0, 5.0)
Z95 = 1.959964


@dataclass(frozen=True)
class NpsStat:
    """Respondent counts behind one NPS figure."""

    n: int = 0
    promoters: int = 0
    detractors: int = 0

    @property
    def value(self) -> float | None:
        """``100·(P − D)/N``; None without respondents."""
        if not self.n:
            return None
        return 100.0 * (self.promoters - self.detractors) / self.n

    @property
    def ci95(self) -> tuple[float, float] | None:
        """95% adjusted-Wald interval (Rocks 2016): add 3/4 to P and D, 3 to N."""
        if not self.n:
            return None
        total = self.n + 3.0
        p = (self.promoters + 0.75) / total
        d = (self.detractors + 0.75) / total
        centre = p - d
        spread = Z95 * math.sqrt(max(p + d - centre**2, 0.0) / total)
        return (
            max(-100.0, 100 * (centre - spread)),
            min(100.0, 100 * (centre + spread)),
        )


@dataclass(frozen=True)
class CsatStat:
    """Answers behind one CSAT figure; ``value`` is on 0–100."""

    n: int = 0
    total: float = 0.0
    scale: tuple[float, float] = DEFAULT_CSAT_SCALE

    @property
    def value(self) -> float | None:
        """Mean answer rescaled from the question's scale to 0–100."""
        if not self.n:
            return None
        low, high = self.scale
        return 100.0 * (self.total / self.n - low) / (high - low)


def _options(conn: Connection, metric: str) -> dict[float, float]:
    """The question's answer options as stored value → displayed score."""
    rows = fetch(
        conn,
        "SELECT value, display FROM survey_answer_option"
        " WHERE metric = :metric AND deleted_at IS NULL AND value IS NOT NULL",
        {"metric": metric},
    )
    options: dict[float, float] = {}
    for value, display in rows:
        try:
            options[float(value)] = float(str(display).strip())
        except ValueError:
            log.warning(
                "Answer option %r of question %s is not a number", display, metric
            )
    return options


def _score_expr(options: dict[float, float]) -> str:
    """SQL turning ``r.actual_value`` into the displayed score (C15)."""
    if not options:
        return "r.actual_value"
    whens = " ".join(
        f"WHEN {value!r} THEN {score!r}" for value, score in options.items()
    )
    return f"(CASE r.actual_value {whens} END)"


def _csat_scale(conn: Connection, metric: str, options: dict[float, float]) -> tuple:
    """The CSAT question's scale: its min/max, else its options, else 1–5."""
    rows = fetch(
        conn,
        "SELECT scale_min, scale_max FROM survey_question WHERE sys_id = :metric",
        {"metric": metric},
    )
    if rows and rows[0][0] is not None and rows[0][1] is not None:
        low, high = float(rows[0][0]), float(rows[0][1])
        if high > low:
            return (low, high)
    if len(set(options.values())) > 1:
        return (min(options.values()), max(options.values()))
    return DEFAULT_CSAT_SCALE


def _answers_cte(score: str, *, latest_per_respondent: bool) -> str:
    """CTEs ending in ``scored(respondent, account, score)``: one row per answer."""
    ranked_respondent = ""
    if latest_per_respondent:
        ranked_respondent = (
            ", ROW_NUMBER() OVER (PARTITION BY respondent"
            " ORDER BY taken_on DESC, instance DESC) AS latest"
        )
    return (
        "answers AS ("
        ' SELECT r.instance AS instance, COALESCE(i."user", i.sys_id) AS respondent,'
        " i.taken_on AS taken_on, i.trigger_id AS trigger_id,"
        " i.trigger_table AS ttable,"
        f" {score} AS score,"
        " ROW_NUMBER() OVER (PARTITION BY r.instance"
        " ORDER BY r.sys_updated_on DESC, r.sys_id DESC) AS dup"
        " FROM survey_result r JOIN survey_instance i ON i.sys_id = r.instance"
        " WHERE r.deleted_at IS NULL AND i.deleted_at IS NULL"
        " AND i.state = 'complete' AND r.metric = :metric"
        " AND i.taken_on >= :start AND i.taken_on < :end"
        " AND r.actual_value IS NOT NULL AND r.actual_value >= 0"
        " AND (r.string_value IS NULL OR r.string_value <> 'N/A')"
        f" AND {score} >= :low AND {score} <= :high),"
        " deduped AS ("
        f" SELECT answers.*{ranked_respondent} FROM answers WHERE dup = 1),"
        " scored AS MATERIALIZED ("
        " SELECT d.respondent AS respondent, d.score AS score,"
        " CAST(COALESCE(ct.account, cs.account) AS VARCHAR(32)) AS account"
        " FROM deduped d"
        " LEFT JOIN contact ct ON ct.sys_id = d.respondent AND ct.deleted_at IS NULL"
        ' LEFT JOIN "case" cs ON cs.sys_id = d.trigger_id AND cs.deleted_at IS NULL'
        f" AND (d.ttable IS NULL OR d.ttable = '{CASE_TABLE}')"
        + (" WHERE d.latest = 1)" if latest_per_respondent else ")")
    )


def _scoped_rows(conn: Connection, ctes: str, select: str, params: dict) -> tuple:
    """Run one aggregate ``select`` over ``scored`` overall, per account, per CSM."""
    rows = fetch_scoped(
        conn,
        ctes,
        {
            "overall": f"SELECT '' AS id, {select} FROM scored",
            "account": f"SELECT s.account AS id, {select} FROM scored s"
            " JOIN account a ON a.sys_id = s.account AND a.deleted_at IS NULL"
            " GROUP BY s.account",
            "csm": f'SELECT tm."user" AS id, {select} FROM scored s'
            f' {csm_join("s.account")} GROUP BY tm."user"',
        },
        params,
    )
    return rows["overall"][0], rows["account"], rows["csm"]


def no_question_message(conn: Connection, kpi: str, key: str) -> str:
    """Say that ``key`` is unset and list the synced questions it could name.

    The setting wants an ``asmt_metric`` sys_id, which nobody knows by heart;
    the synced ``survey_question`` table holds them, so the message shows them.
    """
    head = f"No {kpi} question configured ({key}); {kpi} is empty."
    rows = fetch(
        conn,
        "SELECT sys_id, name, datatype FROM survey_question"
        " WHERE deleted_at IS NULL ORDER BY name, sys_id",
        {},
    )
    if not rows:
        return (
            f"{head} No survey questions are synced yet: run 'csm-sync sync', then "
            f"set {key} to the sys_id of the question (asmt_metric) to use."
        )
    lines = [
        f"  {row.sys_id}  {row.name or '(no name)'}  ({row.datatype or '?'})"
        for row in rows[:CANDIDATES_SHOWN]
    ]
    if len(rows) > CANDIDATES_SHOWN:
        lines.append(f"  … and {len(rows) - CANDIDATES_SHOWN} more in survey_question")
    return (
        f"{head} Set {key} to the sys_id of one of the synced survey questions "
        "(sys_id, name, datatype):\n" + "\n".join(lines)
    )


def compute_nps(conn: Connection, metric: str | None, params: dict) -> Scoped[NpsStat]:
    """NPS overall (pooled respondents), per account and per CSM book."""
    if not metric:
        log.warning("%s", no_question_message(conn, "NPS", "kpi.nps_metric"))
        return Scoped(NpsStat())
    ctes = _answers_cte(_score_expr(_options(conn, metric)), latest_per_respondent=True)
    select = (
        "COUNT(*) AS n, SUM(CASE WHEN score >= 9 THEN 1 ELSE 0 END) AS p,"
        " SUM(CASE WHEN score <= 6 THEN 1 ELSE 0 END) AS d"
    )
    low, high = NPS_SCALE
    query = {
        **params,
        "metric": metric,
        "start": params["nps_start"],
        "low": low,
        "high": high,
    }
    overall, accounts, csms = _scoped_rows(conn, ctes, select, query)

    def stat(row) -> NpsStat:
        return NpsStat(int(row.n or 0), int(row.p or 0), int(row.d or 0))

    return Scoped(
        stat(overall),
        {row.id: stat(row) for row in accounts},
        {row.id: stat(row) for row in csms},
    )


def compute_csat(
    conn: Connection, metric: str | None, params: dict
) -> Scoped[CsatStat]:
    """CSAT (0–100) overall, per account and per CSM book."""
    if not metric:
        log.warning("%s", no_question_message(conn, "CSAT", "kpi.csat_metric"))
        return Scoped(CsatStat())
    options = _options(conn, metric)
    scale = _csat_scale(conn, metric, options)
    ctes = _answers_cte(_score_expr(options), latest_per_respondent=False)
    select = "COUNT(*) AS n, SUM(score) AS total"
    query = {
        **params,
        "metric": metric,
        "start": params["csat_start"],
        "low": scale[0],
        "high": scale[1],
    }
    overall, accounts, csms = _scoped_rows(conn, ctes, select, query)

    def stat(row) -> CsatStat:
        return CsatStat(int(row.n or 0), float(row.total or 0), scale)

    return Scoped(
        stat(overall),
        {row.id: stat(row) for row in accounts},
        {row.id: stat(row) for row in csms},
    )
