"""bench/profile_roles.py folds py-spy's per-thread stacks into roles."""

from __future__ import annotations

from . import load_bench_module

roles = load_bench_module("profile_roles")

RAW = [
    "thread (11): backfill_0;_pull_slice (backfill.py:10);write_page (pull.py:3) 30\n",
    "thread (12): backfill_1;_pull_slice (backfill.py:10);encode (<string>:1) 10\n",
    "thread (13): fetch-sn_customerservice_case;get_page (client.py:5) 20\n",
    "not a sample line\n",
]


def test_threads_fold_into_roles_with_self_and_inclusive_shares() -> None:
    summary = roles.summarise(RAW)

    assert set(summary) == {"backfill", "fetch"}
    total, own, anywhere = summary["backfill"]
    assert total == 40
    assert own == {"write_page (pull.py)": 30, "encode (<string>)": 10}
    assert anywhere["_pull_slice (backfill.py)"] == 40
    assert summary["fetch"][0] == 20


def test_role_names_drop_thread_ids_and_suffixes() -> None:
    assert roles.role_of("thread (23939): MainThread") == "MainThread"
    assert roles.role_of("thread (1): fetch-asmt_metric_result") == "fetch"
    assert roles.role_of("thread (2): backfill_7") == "backfill"
