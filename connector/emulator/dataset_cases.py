"""Cases with their state history in sys_audit.

Low-health accounts open more cases, of higher priority, that wait on the
customer and get reopened more often, so first-contact resolution and support
burden computed from these rows track the hidden health.
"""

from __future__ import annotations

from collections.abc import Callable

from connector.emulator.dataset_interactions import Event, Interactions
from connector.emulator.dataset_people import Account
from connector.emulator.dataset_support import DAY, HOUR, World, poisson

_CASE = "sn_customerservice_case"
_TIER_CASES = {"strategic": 1.5, "valued": 1.15, "tactical": 0.9, "other": 0.7}
_RESOLVE_HOURS = (6.0, 20.0, 60.0, 100.0)
_SLA_HOURS = (12, 48, 120, 240)  # resolution SLA, paused while awaiting info
_CHANNELS = ("web", "email", "phone", "chat", "social")
_CHANNEL_WEIGHTS = (0.35, 0.28, 0.2, 0.14, 0.03)
_SUBJECTS = (
    "Login fails after password reset",
    "Report export times out",
    "Cannot attach files to records",
    "Dashboard shows stale data",
    "Integration sync errors since upgrade",
    "Need help configuring SSO",
    "Licence count looks wrong",
    "Slow page loads in the afternoon",
    "Question about data retention",
    "Request: bulk update of users",
    "Email notifications not delivered",
    "Mobile app crashes on start",
    "API returns 500 for large payloads",
    "How to set up approval rules",
    "Feature request: custom fields on forms",
    "Scheduled job did not run",
)
_RESOLUTIONS = (
    "Solved (Permanently)",
    "Solved (Work Around)",
    "Solved Remotely (Permanently)",
    "Not Solved (Not Reproducible)",
    "Closed/Resolved by Caller",
)
_AUTO_CLOSE_RATE = 250
_FIX_RATE = 400
_FIX_REACH = 120 * DAY  # the fix script touched cases opened in 4 months

Change = tuple[int, str, str, str, str]  # (time, field, old, new, user_name)
SurveyHook = Callable[[Account, str, str, int, float], None]


class Cases:
    """Writes cases and their sys_audit state rows (interactions: ``Interactions``)."""

    def __init__(self, world: World, on_closed: SurveyHook) -> None:
        self.w = world
        self.on_closed = on_closed
        self.interactions = Interactions(world)
        # A one-off fix script touched every recent case in one go (a burst).
        self.fix_time = (world.last_day - 45) * DAY + 14 * HOUR + 30 * 60

    def run(self, account: Account) -> None:
        """All cases of the account while it is a customer, plus CSM outreach."""
        w, rng = self.w, self.w.rng
        first, last = account.start_day, w.last_day
        if account.churn_day is not None:
            last = min(last, account.churn_day + 30)
        years = max(0, last - first) / 365.0
        rate = 12.0 * (0.45 + 1.1 * (1.0 - account.h)) * _TIER_CASES[account.tier]
        days = sorted(
            w.weekday_day(first, last) for _ in range(poisson(rng, rate * years))
        )
        for day in days:
            self._case(account, w.work_time(day))
        self.interactions.outreach(account, first, last, years)

    def _case(self, account: Account, opened: int, parent: str = "") -> None:
        w, rng, h = self.w, self.w.rng, account.h
        if opened > w.end:
            return
        contact = rng.choice(account.contacts)
        agent = account.agent if rng.random() < 0.5 else rng.choice(w.agents)
        priority = rng.choices(
            (1, 2, 3, 4), (0.03 + 0.12 * (1 - h), 0.1 + 0.18 * (1 - h), 0.45, 0.35)
        )[0]
        channel = rng.choices(_CHANNELS, _CHANNEL_WEIGHTS)[0]
        case_id = w.sink.new_id()
        events, flags = self._history(account, opened, priority, contact[1], agent[1])
        applied = [e for e in events if e[0] <= w.end]
        state = applied[-1][2] if applied else "1"
        row = self._write_case(
            account, case_id, opened, priority, channel, contact, agent, applied, state
        )
        row["parent"] = parent
        changes = [(ts, "state", old, new, user) for ts, old, new, user in applied]
        changes += self._assignments(applied, agent, int(row["reassignment_count"]))
        self._write_audit(case_id, sorted(changes, key=lambda c: c[0]))
        self.interactions.for_case(
            account, case_id, opened, channel, contact, agent, applied
        )
        if state == "3":
            quality = 0.1 * flags
            self.on_closed(account, case_id, contact[0], applied[-1][0], quality)
        if priority == 1 and not parent and rng.random() < 0.3:
            self._children(account, case_id, opened)

    def _children(self, account: Account, parent: str, opened: int) -> None:
        """A critical case often becomes a major case other reports attach to."""
        rng = self.w.rng
        for _ in range(rng.randint(1, 3)):
            self._case(account, opened + rng.randint(600, 4 * HOUR), parent)

    def _history(
        self, account: Account, opened: int, priority: int, customer: str, agent: str
    ) -> tuple[list[Event], int]:
        """State changes of one case; returns them and a count of bad signs."""
        rng, h = self.w.rng, account.h
        # Most cases are picked up within the hour; some sit in New for a day.
        wait = 2400 if rng.random() < 0.85 else 16 * HOUR
        assigned = opened + 60 + int(rng.expovariate(1 / wait))
        events: list[Event] = [(assigned, "1", "10", agent)]
        if rng.random() < 0.04:
            cancel = assigned + int(rng.expovariate(1 / DAY))
            return [*events, (cancel, "10", "7", agent)], 0
        work = _RESOLVE_HOURS[priority - 1] * HOUR * rng.lognormvariate(0, 0.7)
        work = int(work * (1.35 - 0.7 * h)) + 300
        bad, resolved = 0, assigned + work
        if rng.random() < 0.06 + 0.3 * (1 - h):
            asked = assigned + int(work * rng.uniform(0.2, 0.6))
            back = asked + 600 + int(rng.expovariate(1 / (1.2 * DAY)))
            events += [(asked, "10", "18", agent), (back, "18", "10", customer)]
            resolved += back - asked
            bad += 1
        events.append((resolved, "10", "6", agent))
        if rng.random() < 0.02 + 0.15 * (1 - h):
            reopened = resolved + int(rng.uniform(0.2, 4.5) * DAY)
            resolved = reopened + int(work * rng.uniform(0.3, 1.0))
            events += [(reopened, "6", "10", customer), (resolved, "10", "6", agent)]
            bad += 2
        events.append(self._closing(resolved, customer))
        return events, bad

    def _closing(self, resolved: int, customer: str) -> Event:
        """Customer accepts, or the nightly auto-close job closes it after 5 days."""
        rng = self.w.rng
        if rng.random() < 0.55:
            accept = resolved + min(int(rng.expovariate(1 / (0.8 * DAY))), 4 * DAY)
            return accept, "6", "3", customer
        night = (resolved // DAY + 6) * DAY + 2 * HOUR
        return self.w.bursts.at(night, _AUTO_CLOSE_RATE), "6", "3", "system"

    def _write_case(
        self,
        account: Account,
        case_id: str,
        opened: int,
        priority: int,
        channel: str,
        contact: tuple[str, str],
        agent: tuple[str, str],
        applied: list[Event],
        state: str,
    ) -> dict[str, str]:
        w, rng = self.w, self.w.rng
        resolved = next((e[0] for e in reversed(applied) if e[2] == "6"), None)
        if state not in ("6", "3"):
            resolved = None
        closed = applied[-1][0] if state in ("3", "7") else None
        updated, by = (
            (applied[-1][0], applied[-1][3]) if applied else (opened, agent[1])
        )
        mods = len(applied) + rng.randrange(4)
        fix = self.fix_time
        if fix - _FIX_REACH <= opened < fix <= w.end and updated < fix:
            updated, by = w.bursts.at(fix, _FIX_RATE), "admin"
            mods += 1
        sla_end = resolved if resolved is not None else w.end
        elapsed = sla_end - opened - _paused(applied, sla_end)
        made_sla = elapsed <= _SLA_HOURS[priority - 1] * HOUR
        reassigned = (
            0
            if state == "1" or rng.random() < 0.65 + 0.3 * account.h
            else (1 + int(rng.expovariate(1.5)))
        )
        return w.sink.add(
            _CASE,
            case_id,
            (w.stamp(opened), w.stamp(updated)),
            (contact[1] if channel in ("web", "email") else agent[1], by),
            mods,
            {
                "short_description": rng.choice(_SUBJECTS),
                "state": state,
                "active": "false" if state in ("3", "7") else "true",
                "priority": str(priority),
                "opened_at": w.stamp(opened),
                "closed_at": w.stamp(closed) if closed else "",
                "resolved_at": w.stamp(resolved) if resolved else "",
                "assigned_to": agent[0] if applied else "",
                "reassignment_count": str(reassigned),
                "made_sla": "true" if made_sla else "false",
                "escalation": self._escalation(account, priority, made_sla),
                "business_duration": self._business(opened, resolved),
                "contact_type": channel,
                "sys_class_name": _CASE,
                "account": account.sys_id,
                "contact": contact[0],
                "product": account.product_on(opened // DAY, rng.random()),
                "category": rng.choices(("0", "1", "2"), (0.3, 0.6, 0.1))[0],
                "resolution_code": rng.choice(_RESOLUTIONS) if resolved else "",
            },
        )

    def _escalation(self, account: Account, priority: int, made_sla: bool) -> str:
        if not made_sla:
            return "3" if priority <= 2 else "1"
        if priority <= 2 and self.w.rng.random() < 0.4 * (1 - account.h):
            return "2"
        return "0"

    def _business(self, opened: int, resolved: int | None) -> str:
        """Business-hours duration: roughly 9 of every 24 calendar hours."""
        if resolved is None:
            return ""
        return self.w.clock.duration((resolved - opened) * 9 // 24)

    def _assignments(
        self, applied: list[Event], agent: tuple[str, str], count: int
    ) -> list[Change]:
        """``assigned_to`` history: the first pick, then ``count`` reassignments."""
        if not applied:
            return []
        rng, agents = self.w.rng, self.w.agents
        start, stop = applied[0][0], applied[-1][0]
        chain = [rng.choice(agents) for _ in range(count)] + [agent]
        changes: list[Change] = [(start, "assigned_to", "", chain[0][0], "system")]
        for i in range(count):
            ts = start + (stop - start) * (i + 1) // (count + 1)
            old, new = chain[i], chain[i + 1]
            changes.append((ts, "assigned_to", old[0], new[0], old[1]))
        return changes

    def _write_audit(self, case_id: str, changes: list[Change]) -> None:
        """One sys_audit row per audited field change, stamped at the change."""
        w = self.w
        for checkpoint, (ts, name, old, new, user) in enumerate(changes, start=1):
            stamp = w.stamp(ts)
            w.sink.add(
                "sys_audit",
                w.sink.new_id(),
                (stamp, stamp),
                (user, user),
                0,
                {
                    "tablename": _CASE,
                    "documentkey": case_id,
                    "fieldname": name,
                    "oldvalue": old,
                    "newvalue": new,
                    "user": user,
                    "record_checkpoint": str(checkpoint),
                },
            )


def _paused(applied: list[Event], until: int) -> int:
    """Seconds spent in Awaiting Info before ``until`` (the SLA clock stops)."""
    paused, since = 0, None
    for ts, _, new, _ in applied:
        if new == "18":
            since = ts
        elif since is not None:
            paused, since = paused + ts - since, None
    if since is not None:
        paused += max(0, until - since)
    return paused
