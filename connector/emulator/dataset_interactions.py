"""Interactions (customer contacts and CSM outreach) and their links to cases.

Most cases start from one interaction; cases of unhappy accounts collect
follow-ups, which is what breaks first-contact resolution. CSMs reach out to
their accounts, engaged (healthy) ones more often.
"""

from __future__ import annotations

from connector.emulator.dataset_people import Account
from connector.emulator.dataset_support import HOUR, World, poisson

_CASE = "sn_customerservice_case"
Event = tuple[int, str, str, str]  # (time, old state, new state, user_name)
_INTERACTION_TYPE = {
    "web": "messaging",
    "email": "email",
    "phone": "phone",
    "chat": "chat",
    "social": "messaging",
}
_OUTREACH = (
    "Quarterly business review",
    "Adoption check-in",
    "Renewal discussion",
    "Onboarding follow-up",
    "Executive sponsor call",
)


class Interactions:
    """Writes interaction and interaction_related_record rows."""

    def __init__(self, world: World) -> None:
        self.w = world

    def for_case(
        self,
        account: Account,
        case_id: str,
        opened: int,
        channel: str,
        contact: tuple[str, str],
        agent: tuple[str, str],
        applied: list[Event],
    ) -> None:
        """The contact that opened the case, and follow-ups while it was open."""
        w, rng = self.w, self.w.rng
        first = opened - rng.randint(60, 900)
        times = [first]
        resolved = next((e[0] for e in applied if e[2] == "6"), w.end)
        if rng.random() < 0.06 + 0.25 * (1 - account.h):
            extra = 1 + (rng.random() < 0.3)
            times += sorted(
                rng.randint(opened, max(opened, resolved)) for _ in range(extra)
            )
        kind = _INTERACTION_TYPE[channel]
        for i, ts in enumerate(times):
            if ts > w.end:
                break
            if i:
                kind = rng.choice(("phone", "email", "chat"))
            inter = self._interaction(
                account,
                contact,
                agent,
                ts,
                kind,
                "inbound",
                "Customer contact about a case",
            )
            linked = max(ts, opened)
            if linked <= w.end:
                self._link(inter, case_id, linked, agent[1])

    def _interaction(
        self,
        account: Account,
        contact: tuple[str, str],
        agent: tuple[str, str],
        opened: int,
        kind: str,
        direction: str,
        subject: str,
    ) -> str:
        w, rng = self.w, self.w.rng
        closed = opened + rng.randint(120, 1800 if kind != "email" else 4 * HOUR)
        state = "closed_complete"
        if kind in ("chat", "phone") and rng.random() < 0.04:
            state = "closed_abandoned"
        if closed > w.end:
            state, closed = "work_in_progress", 0
        sys_id = w.sink.new_id()
        w.sink.add(
            "interaction",
            sys_id,
            (w.stamp(opened), w.stamp(closed or opened)),
            (agent[1], agent[1]),
            2 if closed else 0,
            {
                "type": kind,
                "state": state,
                "account": account.sys_id,
                "contact": contact[0],
                "opened_at": w.stamp(opened),
                "closed_at": w.stamp(closed) if closed else "",
                "assigned_to": agent[0],
                "direction": direction,
                "short_description": subject,
            },
        )
        return sys_id

    def _link(self, interaction: str, case_id: str, ts: int, user: str) -> None:
        stamp = self.w.stamp(ts)
        self.w.sink.add(
            "interaction_related_record",
            self.w.sink.new_id(),
            (stamp, stamp),
            (user, user),
            0,
            {
                "interaction": interaction,
                "document_table": _CASE,
                "document_id": case_id,
                "task": case_id,
                "type": "task",
            },
        )

    def outreach(self, account: Account, first: int, last: int, years: float) -> None:
        """Outbound CSM touches; engaged (healthy) accounts take more of them."""
        w, rng = self.w, self.w.rng
        if account.churn_day is not None:
            last = min(last, account.churn_day)
        for _ in range(poisson(rng, (1.5 + 5.0 * account.h) * years)):
            ts = w.work_time(w.weekday_day(first, last))
            if ts <= w.end:
                self._interaction(
                    account,
                    rng.choice(account.contacts),
                    account.csm,
                    ts,
                    rng.choice(("phone", "email")),
                    "outbound",
                    rng.choice(_OUTREACH),
                )
