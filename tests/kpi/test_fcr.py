"""First contact resolution on a hand-built set of cases, per rule and channel."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Engine

from connector.config import KpiSettings
from connector.kpi import compute_kpis

from .seed import Seed

AS_OF = date(2026, 12, 1)
RESOLVED = datetime(2026, 11, 10, 12)


def _cases(seed: Seed) -> str:
    """Seven cases in the FCR denominator, three of them FCR; see each comment."""
    acme = seed.account("Acme")

    def resolved(channel: str, **kw) -> str:
        return seed.case(acme, channel=channel, resolved_at=RESOLVED, **kw)

    one = resolved("phone", reassignment_count=0)  # FCR
    seed.link(seed.interaction(acme, RESOLVED), one)
    resolved("phone", reassignment_count=1)  # reassigned
    waited = resolved("email")  # waited on the customer
    seed.state_change(waited, "10", "18", datetime(2026, 11, 9))
    reopened = resolved("email")  # reopened 3 days after its first resolution
    seed.state_change(reopened, "10", "6", datetime(2026, 11, 1))
    seed.state_change(reopened, "6", "10", datetime(2026, 11, 4))
    late = resolved("web")  # reopened after 10 days: still FCR
    seed.state_change(late, "10", "6", datetime(2026, 10, 25))
    seed.state_change(late, "6", "10", datetime(2026, 11, 4))
    chatty = resolved("web")  # two interactions
    seed.link(seed.interaction(acme, RESOLVED), chatty)
    seed.link(seed.interaction(acme, RESOLVED), chatty)
    tidy = resolved("chat")  # second link deleted: one interaction, FCR
    seed.link(seed.interaction(acme, RESOLVED), tidy)
    seed.link(seed.interaction(acme, RESOLVED), tidy, deleted_at=datetime(2026, 11, 11))
    seed.case(acme, channel="phone", state="7", resolved_at=RESOLVED)  # cancelled
    seed.case(acme, channel="phone", resolved_at=datetime(2026, 8, 1))  # before window
    seed.case(
        acme, channel="phone", resolved_at=RESOLVED, deleted_at=datetime(2026, 11, 20)
    )  # deleted
    seed.case(acme, channel="phone", state="10")  # still open
    return acme


def test_fcr_rules_overall_per_channel_and_account(engine: Engine, seed: Seed) -> None:
    acme = _cases(seed)

    result = compute_kpis(engine, KpiSettings(), as_of=AS_OF)

    fcr = result.overall.fcr
    assert (fcr.numerator, fcr.denominator) == (3, 7)
    channels = {
        k: (r.numerator, r.denominator)
        for k, r in result.overall.fcr_by_channel.items()
    }
    assert channels == {"phone": (1, 2), "email": (0, 2), "web": (1, 2), "chat": (1, 1)}
    account = next(a for a in result.accounts if a.sys_id == acme)
    assert (account.fcr.numerator, account.fcr.denominator) == (3, 7)


def test_fcr_rule_set_is_configurable(engine: Engine, seed: Seed) -> None:
    _cases(seed)
    settings = KpiSettings(fcr_rules=["no_reassignment"])

    fcr = compute_kpis(engine, settings, as_of=AS_OF).overall.fcr

    assert (fcr.numerator, fcr.denominator) == (6, 7)


def test_reopen_window_and_interaction_limit_are_parameters(
    engine: Engine, seed: Seed
) -> None:
    _cases(seed)
    settings = KpiSettings(fcr_reopen_days=14, fcr_max_interactions=2)

    fcr = compute_kpis(engine, settings, as_of=AS_OF).overall.fcr

    # the late reopen now disqualifies; the two-interaction case now qualifies
    assert (fcr.numerator, fcr.denominator) == (3, 7)
    strict = compute_kpis(
        engine, KpiSettings(fcr_max_interactions=0), as_of=AS_OF
    ).overall.fcr
    # with no interaction allowed, only the case reopened after 10 days (no links)
    assert (strict.numerator, strict.denominator) == (1, 7)
