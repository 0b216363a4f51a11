"""Survey instances and answers (NPS, CSAT, comment) with C15's quirks.

Answers are drawn from the account's hidden health: high health gives
promoters and 5-star CSAT. Stored shapes follow case C15: NPS ``actual_value``
is the migrated definition value (score + 1) with the score in
``string_value``, a few NPS rows say 'N/A', a few answers are duplicated
(the later row is the real one), and comments carry ``actual_value`` -1.
"""

from __future__ import annotations

from connector.emulator.dataset_people import Account
from connector.emulator.dataset_reference import (
    COMMENT_METRIC_ID,
    CSAT_METRIC_ID,
    NPS_METRIC_ID,
    SURVEY_TYPE_ID,
    nps_definition_value,
)
from connector.emulator.dataset_support import DAY, HOUR, World

_CASE = "sn_customerservice_case"
_CASE_SURVEY_SHARE = 0.25
_CAMPAIGN_RATE = 500
_DUE = 14 * DAY
_COMMENTS = {
    "bad": (
        "Too slow to resolve.",
        "Had to chase the team twice.",
        "The product keeps breaking.",
        "Not impressed with support.",
    ),
    "mid": (
        "OK overall.",
        "Resolved, but it took a while.",
        "Fine.",
        "Documentation could be better.",
    ),
    "good": (
        "Quick and friendly!",
        "Great support as always.",
        "Excellent, thank you.",
        "The team really knows the product.",
    ),
}


class Surveys:
    """Writes asmt_assessment_instance and asmt_metric_result rows."""

    def __init__(self, world: World) -> None:
        self.w = world

    def case_closed(
        self, account: Account, case_id: str, contact: str, closed: int, quality: float
    ) -> None:
        """Closing a case sends a survey to its contact (sampled, as configured)."""
        if self.w.rng.random() < _CASE_SURVEY_SHARE:
            self._instance(account, contact, closed, case_id, quality)

    def campaigns(self, account: Account) -> None:
        """Yearly relationship survey to two contacts of every current customer."""
        w, rng = self.w, self.w.rng
        day = w.last_day - 60
        while day > w.first_day:
            current = account.churn_day is None or account.churn_day > day
            if current and account.start_day + 60 <= day:
                chosen = rng.sample(account.contacts, min(2, len(account.contacts)))
                for contact, _ in chosen:
                    start = w.bursts.at(day * DAY + 8 * HOUR, _CAMPAIGN_RATE)
                    self._instance(account, contact, start, "", 0.0)
            day -= 365

    def _instance(
        self, account: Account, contact: str, created: int, case_id: str, quality: float
    ) -> None:
        w, rng = self.w, self.w.rng
        taken = created + 300 + int(rng.expovariate(1 / (1.5 * DAY)))
        responds = rng.random() < 0.55 + 0.25 * account.h and taken < created + _DUE
        state, updated, taken_on = "ready", created, ""
        if responds and taken <= w.end:
            state, updated, taken_on = "complete", taken, w.stamp(taken)
        elif created + _DUE + DAY <= w.end:
            state, updated = "canceled", created + _DUE + DAY + 1800
        elif responds and rng.random() < 0.3:
            state = "wip"
        sys_id = w.sink.new_id()
        w.sink.add(
            "asmt_assessment_instance",
            sys_id,
            (w.stamp(created), w.stamp(updated)),
            ("system", "system"),
            0 if state == "ready" else 2,
            {
                "metric_type": SURVEY_TYPE_ID,
                "user": contact,
                "state": state,
                "taken_on": taken_on,
                "due_date": w.stamp(created + _DUE),
                "trigger_id": case_id,
                "trigger_table": _CASE if case_id else "",
            },
        )
        if state == "complete":
            self._answers(account, sys_id, taken, quality)

    def _answers(
        self, account: Account, instance: str, taken: int, quality: float
    ) -> None:
        """One NPS, one CSAT and one comment row, all stamped at submission."""
        rng = self.w.rng
        mood = account.h + account.bias - quality + rng.gauss(0.0, 0.05)
        nps = min(10, max(0, round(3.4 + 7.0 * mood + rng.gauss(0.0, 1.4))))
        csat = min(5, max(1, round(1.6 + 3.6 * mood + rng.gauss(0.0, 0.8))))
        if rng.random() < 0.03:
            self._result(instance, NPS_METRIC_ID, taken, "-1", "", "N/A")
        else:
            if rng.random() < 0.02:
                wrong = rng.randint(0, 10)
                self._result(
                    instance,
                    NPS_METRIC_ID,
                    taken,
                    nps_definition_value(wrong),
                    f"{wrong / 10:.2f}",
                    str(wrong),
                )
                taken += rng.randint(1, 90)
            self._result(
                instance,
                NPS_METRIC_ID,
                taken,
                nps_definition_value(nps),
                f"{nps / 10:.2f}",
                str(nps),
            )
        self._result(
            instance,
            CSAT_METRIC_ID,
            taken,
            str(csat),
            f"{(csat - 1) / 4:.2f}",
            str(csat),
        )
        bucket = "bad" if nps <= 6 else "mid" if nps <= 8 else "good"
        comment = rng.choice(_COMMENTS[bucket]) if rng.random() < 0.6 else ""
        self._result(instance, COMMENT_METRIC_ID, taken, "-1", "", comment)

    def _result(
        self,
        instance: str,
        metric: str,
        ts: int,
        actual: str,
        normalized: str,
        text: str,
    ) -> None:
        w = self.w
        stamp = w.stamp(min(ts, w.end))
        w.sink.add(
            "asmt_metric_result",
            w.sink.new_id(),
            (stamp, stamp),
            ("system", "system"),
            0,
            {
                "instance": instance,
                "metric": metric,
                "actual_value": actual,
                "normalized_value": normalized,
                "string_value": text,
            },
        )
