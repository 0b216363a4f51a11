"""Pure rules of write-back: normalising, the allow-list guard, the diff."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.config import settings_from_dict
from connector.errors import ConfigError, WriteBackError
from connector.writeback.diff import Known, diff_account
from connector.writeback.fields import account_fields
from connector.writeback.guard import (
    check_config,
    ensure_metadata_write,
    ensure_writable,
)
from connector.writeback.normalise import normalise, same_value
from connector.writeback.verify import verify_record

AUTH = {"username": "a", "password": "b"}
BASE = {"instance": {"url": "http://127.0.0.1:1", "auth": AUTH}}


def settings(**writeback):
    return settings_from_dict({**BASE, "writeback": writeback})


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_integer_forms_compare_equal(value):
    assert same_value(str(value), f"{value}.0", "integer")
    assert same_value(value, f" {value} ", "integer")
    assert not same_value(value, str(value + 1), "integer")


@given(st.decimals(allow_nan=False, allow_infinity=False, places=4,
                   min_value=-10**6, max_value=10**6))  # fmt: skip
def test_decimal_trailing_zeros_do_not_matter(value: Decimal):
    assert same_value(str(value), str(value) + "00" if "." in str(value)
                      else str(value) + ".000", "decimal")  # fmt: skip


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
               max_size=80))  # fmt: skip
def test_escaped_and_padded_text_is_the_same_write(text):
    assert same_value(text, "  " + html.escape(text) + "\n", "string")


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))
def test_datetime_forms_compare_equal(moment):
    aware = moment.replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=5)))
    wire = moment.strftime("%Y-%m-%d %H:%M:%S")
    assert normalise(aware, "glide_date_time") == wire
    assert same_value(
        wire, moment.isoformat(timespec="seconds") + "Z", "glide_date_time"
    )


@pytest.mark.parametrize("text", ["&lt", "a &amp; b", "&", "<b>", "&#39;"])
def test_entity_like_text_matches_its_escaped_echo(text):
    assert same_value(text, html.escape(text), "string")
    assert same_value(text, text, "string")


def test_different_text_is_different():
    assert not same_value("weakest: support", "weakest: csat", "string")
    assert not same_value("72", "", "integer")


@pytest.mark.parametrize(
    "fields",
    [{"score": "name"}, {"score": "sys_id"}, {"band": "U_Health"}, {"nps": "u__x"},
     {"trend": "x_u_trend"}],
)  # fmt: skip
def test_config_guard_refuses_non_custom_fields(fields):
    with pytest.raises(ConfigError) as caught:
        check_config(settings(fields=fields))
    key = next(iter(fields))
    assert caught.value.problems[0].key == f"writeback.fields.{key}"


def test_write_guard_refuses_other_tables_and_fields():
    good = settings()
    ensure_writable(good, "customer_account", ["u_health_score", "u_nps"])

    with pytest.raises(WriteBackError, match="sys_user"):
        ensure_writable(good, "sys_user", ["u_health_score"])
    with pytest.raises(WriteBackError, match="'name'"):
        ensure_writable(good, "customer_account", ["u_health_score", "name"])
    with pytest.raises(WriteBackError, match="u_other"):
        ensure_writable(good, "customer_account", ["u_other"])
    with pytest.raises(WriteBackError):
        ensure_writable(good, "u_csm_health_snapshot", ["u_score"])  # history off


def test_write_guard_refuses_a_hostile_field_even_without_config_check():
    hostile = settings(fields={"score": "name"})

    with pytest.raises(WriteBackError):
        ensure_writable(hostile, "customer_account", ["name"])


def test_metadata_guard_only_defines_our_fields():
    good = settings(history=True)
    ensure_metadata_write(good, "sys_dictionary",
                          {"name": "customer_account", "element": "u_nps"})  # fmt: skip
    ensure_metadata_write(good, "sys_db_object", {"name": "u_csm_health_snapshot"})

    with pytest.raises(WriteBackError):
        ensure_metadata_write(
            good, "sys_dictionary", {"name": "customer_account", "element": "name"}
        )
    with pytest.raises(WriteBackError):
        ensure_metadata_write(good, "sys_db_object", {"name": "u_other"})
    with pytest.raises(WriteBackError):
        ensure_metadata_write(good, "sys_script", {"name": "customer_account"})


def test_timestamp_alone_is_no_reason_to_write():
    specs = account_fields(settings())
    desired = {s.element: "" for s in specs} | {
        "u_health_updated": "2026-12-04 00:00:00"
    }
    known = {("a", s.element): Known("", from_state=True) for s in specs}

    diff = diff_account("a", desired, specs, known)

    assert diff.writes == []


def test_remembered_instance_rewrite_counts_as_written():
    specs = [s for s in account_fields(settings()) if s.key == "reason"]
    known = {("a", "u_health_reason"): Known("x & y", "X &amp; Y!", from_state=True)}

    same = diff_account("a", {"u_health_reason": "X & Y!"}, specs, known)
    changed = diff_account("a", {"u_health_reason": "z"}, specs, known)

    assert same.writes == []
    assert [w.new for w in changed.writes] == ["z"]


@given(
    score=st.integers(min_value=0, max_value=100),
    reason=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
                   max_size=60),
    pad=st.sampled_from(["", " ", "\n", "\t "]),
)  # fmt: skip
def test_a_sanitised_answer_is_a_success_and_needs_no_second_write(score, reason, pad):
    specs = [s for s in account_fields(settings()) if s.key in ("score", "reason")]
    desired = {"u_health_score": str(score), "u_health_reason": reason.strip()}
    first = diff_account("a", desired, specs, {})
    answer = {"u_health_score": f"{score}.0",
              "u_health_reason": pad + html.escape(reason.strip()) + pad}  # fmt: skip

    verdicts = verify_record(first.writes, answer)
    known = {
        ("a", v.write.spec.element): Known(v.write.new, v.returned or "", True)
        for v in verdicts
    }

    assert all(v.ok for v in verdicts)
    assert diff_account("a", desired, specs, known).writes == []


def test_a_field_absent_from_the_answer_is_failed_with_the_install_fix():
    # A PATCH of a field that does not exist answers 200 without it (C09):
    # the only evidence when sys_dictionary is hidden from the user.
    specs = [s for s in account_fields(settings()) if s.key in ("score", "trend")]
    writes = diff_account("a", {"u_health_score": "5", "u_health_trend": "1"},
                          specs, {}).writes  # fmt: skip

    verdicts = verify_record(writes, {"u_health_score": "5"})

    assert [v.ok for v in verdicts] == [True, False]
    assert "u_health_trend missing from the response" in verdicts[1].message
    assert "csm-sync install-fields" in verdicts[1].message


def test_an_unknown_field_with_an_empty_value_is_no_change():
    specs = [s for s in account_fields(settings()) if s.key in ("score", "nps")]

    diff = diff_account("a", {"u_health_score": "5", "u_nps": ""}, specs, {})

    assert [(w.spec.element, w.old, w.new) for w in diff.writes] == [
        ("u_health_score", "", "5")
    ]
