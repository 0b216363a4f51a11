"""Bad input never crashes a run: values, queries, config and mapping files.

* coercion: any value of any JSON shape either coerces or raises CoercionError;
  a whole record through any shipped mapping never raises;
* encoded queries: a value either is refused or, sent to the emulator, matches
  exactly the records holding it (separators never change the meaning);
* config and mapping files: any malformation exits 2 naming the file and the
  key, never a traceback;
* hostile records on the instance (wrong types, 100 kB text, HTML, control
  characters): quarantined with a reason or stored faithfully, the run goes on
  and the neighbours are exact.
"""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from typer.testing import CliRunner

from connector.cli import app
from connector.emulator.server import EmulatorServer
from connector.mapping.coerce import CoercionError, coerce_value
from connector.mapping.rows import RowMapper
from connector.servicenow.client import ServiceNowClient
from connector.servicenow.query import Q, QueryValueError
from connector.store.engine import open_store
from connector.store.state import QuarantinedRow
from connector.sync.backfill import run_backfill
from connector.sync.incremental import run_incremental

from . import kit
from .crash import settings_for

KINDS = ["string", "choice", "integer", "decimal", "boolean", "datetime", "date"]
KINDS += ["duration", "reference"]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
TYPED = {
    "integer": int,
    "decimal": Decimal,
    "boolean": bool,
    "duration": int,
    "string": str,
    "choice": str,
    "reference": str,
}


# --- coercion ---------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(raw=JSON | st.text(), kind=st.sampled_from(KINDS))
def test_coercion_either_coerces_to_the_type_or_refuses(raw: Any, kind: str) -> None:
    try:
        value = coerce_value(raw, kind)
    except CoercionError as exc:
        assert str(exc)  # a reason the quarantine can show
        return
    if value is not None and kind in TYPED:
        assert isinstance(value, TYPED[kind]), (raw, kind, value)


@settings(max_examples=300, deadline=None)
@given(
    raw=st.from_regex(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\n?", fullmatch=True),
    kind=st.sampled_from(["datetime", "duration"]),
)
def test_datetime_shaped_garbage_is_refused_not_raised(raw: str, kind: str) -> None:
    """Regression: '2026-02-30 10:00:00' escaped the fast path as a bare ValueError
    and crashed the whole sync run instead of quarantining the row."""
    try:
        value = coerce_value(raw, kind)
    except CoercionError as exc:
        assert repr(raw) in str(exc)
        return
    assert isinstance(value, int if kind == "duration" else datetime)


MAPPERS = [RowMapper(m) for m in kit.shipped_mappings()]


@settings(max_examples=150, deadline=None)
@given(
    mapper=st.sampled_from(MAPPERS),
    values=st.dictionaries(st.text(max_size=12), JSON, max_size=6),
    keep=st.lists(st.text(max_size=40) | JSON, min_size=40, max_size=40),
)
def test_any_record_maps_or_is_quarantined_with_reasons(
    mapper: RowMapper, values: dict[str, Any], keep: list[Any]
) -> None:
    """Every mapped field gets a hostile value; the mapper never raises."""
    fields = [s.field for s in mapper.mapping.fields.values()]
    record = dict(values)
    record.update(zip(fields, keep, strict=False))
    record.setdefault("sys_id", "0123456789abcdef0123456789abcdef")
    mapped = mapper.map(record)
    if mapped.row is None:
        assert mapped.problems and all(p.reason for p in mapped.problems)
    else:
        assert mapped.problems == []


# --- encoded queries against the emulator ---------------------------------------


VALUE_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30
)


@pytest.fixture(scope="module")
def name_emulator() -> Any:
    with EmulatorServer(accounts=0, seed=1) as emu:
        yield emu


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    value=VALUE_TEXT
    | st.sampled_from(["a^b", "x^ORname=y", "a,b", "=b", "a\nb", "é^NQ", "1=1"])
    | st.builds(lambda a, b: f"{a}^{b}", VALUE_TEXT, VALUE_TEXT)
)
def test_query_values_are_refused_or_match_exactly_their_records(
    name_emulator: EmulatorServer, value: str
) -> None:
    try:
        query = Q.eq("name", value)
    except QueryValueError:
        assert any(c in value for c in "^\n\r") or value.strip().lower().startswith(
            "javascript:"
        )
        assume(False)
    assume(value.strip() == value)  # the platform trims (tested elsewhere)
    emu = name_emulator
    target = emu.instance.insert("customer_account", {"name": value})
    decoys = [
        emu.instance.insert("customer_account", {"name": text})
        for text in (value + "x", "x" + value, value.split("=")[0] or "decoy")
        if text != value
    ]
    data = kit.config_data(emu, "sqlite:///unused.db")
    client = ServiceNowClient(settings_for(emu, data).instance)
    try:
        page = client.get_page(
            "customer_account", query=query.encode(), fields=["sys_id"], limit=100
        )
    finally:
        client.close()
        for row in (target, *decoys):
            emu.instance.delete("customer_account", row["sys_id"])
    matched = {row["sys_id"] for row in page.rows}
    assert target["sys_id"] in matched
    assert not matched & {d["sys_id"] for d in decoys if d["name"] != value}


# --- config and mapping files ------------------------------------------------------

# (dotted key, values that cannot be read as that key's type)
WRONG = {
    "instance.url": ["acme.service-now.com", "ftp://x", 42, ["https://a"]],
    "instance.page_size": ["many", -5, 0, [1], {"a": 1}, 10**9],
    "instance.timeout_seconds": ["soon", 0, -1.5, [3]],
    "instance.max_retries": ["x", -1, 1000],
    "instance.verify_tls": ["maybe", [True], {"x": 1}],
    "instance.auth.method": ["kerberos", 3, ["basic"]],
    "store.url": ["mysql://x/y", 5, ["sqlite:///a"]],
    "store.batch_size": ["x", 0, 10**6],
    "sync.workers": ["two", 0, 64],
    "sync.lag_seconds": [-1, "x", 99999],
    "sync.tables": ["case", 5, {"a": 1}],
    "sync.backfill_since": ["last year", "2025-13-01", [1]],
    "kpi.band_green": ["high", [70]],
    "kpi.fcr_rules": [["no_such_rule"], "no_reopen"],
    "writeback.enabled": ["perhaps", [1]],
    "writeback.batch_size": [0, 501, "x"],
    "daemon.sync_interval_seconds": [0, "often"],
    "logging.level": ["LOUD", 1],
    "logging.format": ["xml", None],
}
SECTIONS = ["instance", "store", "sync", "kpi", "writeback", "daemon", "logging"]


def base_config() -> dict[str, Any]:
    return {
        "instance": {
            "url": "http://127.0.0.1:9",
            "auth": {"method": "basic", "username": "u", "password": "${NO_PW:-x}"},
        },
        "store": {"url": "sqlite:///store.db"},
        "mappings": str(kit.SHIPPED),
    }


def put(data: dict[str, Any], key: str, value: Any) -> None:
    *parents, last = key.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def drop(data: dict[str, Any], key: str) -> None:
    *parents, last = key.split(".")
    node = data
    for part in parents:
        node = node[part]
    del node[last]


CONFIG_FAULTS = st.one_of(
    st.sampled_from(sorted(WRONG)).flatmap(
        lambda k: st.tuples(st.just("wrong"), st.just(k), st.sampled_from(WRONG[k]))
    ),
    st.tuples(
        st.just("unknown"),
        st.sampled_from(SECTIONS).map(lambda s: f"{s}.colour"),
        st.just("blue"),
    ),
    st.tuples(
        st.just("missing"),
        st.sampled_from(["instance.url", "instance.auth"]),
        st.none(),
    ),
)


def invoke(config: Path) -> Any:
    return CliRunner().invoke(app, ["check", "-c", str(config)])


def assert_usage_error(result: Any, path: Path, key: str | None) -> None:
    output = result.output + (result.stderr if result.stderr_bytes else "")
    assert result.exit_code == 2, (result.exit_code, output, result.exception)
    assert "Traceback" not in output
    assert str(path) in output
    if key is not None:
        assert key in output, (key, output)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(faults=st.lists(CONFIG_FAULTS, min_size=1, max_size=3, unique_by=lambda f: f[1]))
def test_malformed_config_exits_2_naming_file_and_every_key(
    tmp_path: Path, faults: list[tuple[str, str, Any]]
) -> None:
    data = base_config()
    for kind, key, value in faults:
        if kind == "missing":
            drop(data, key)
        else:
            put(data, key, value)
    path = kit.write_config(tmp_path / "bad.yaml", data)
    result = invoke(path)
    assert_usage_error(result, path, None)
    for _, key, _ in faults:
        if key.startswith("instance.auth.") and ("missing", "instance.auth", None) in (
            faults
        ):
            key = "instance.auth"
        assert key in result.output, (key, result.output)


BROKEN_YAML = [
    "instance: {url: http://x\n",
    "instance:\n\turl: x\n",
    "- just\n- a list\n",
    "42\n",
    "''\n",
    "instance: [unclosed\n",
    "a: b: c\n",
    "\x00\x01binary",
    "instance: &a [*a]\n",
    "key: 'unterminated\n",
]


@pytest.mark.parametrize("text", BROKEN_YAML)
def test_broken_or_non_mapping_config_exits_2_naming_the_file(
    tmp_path: Path, text: str
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    assert_usage_error(invoke(path), path, None)


MAPPING_FAULTS: list[tuple[str, str]] = [
    ("source: [1]\ntarget: case\nfields: {number: number}\n", "source"),
    ("source: sn_customerservice_case\ntarget: nowhere\nfields: {a: b}\n", "target"),
    ("source: sn_customerservice_case\ntarget: case\nfields: 5\n", "fields"),
    (
        "source: sn_customerservice_case\ntarget: case\n"
        "fields: {priority: {field: priority, type: colour}}\n",
        "priority",
    ),
    ("source: sn_customerservice_case\ntarget: case\ncolour: x\n", "colour"),
    ("just text\n", "-"),
    ("source: x\n  target: [\n", "-"),
    (
        "source: sn_customerservice_case\ntarget: case\n"
        "filter: 'active=true^javascript:gs.now()'\nfields: {number: number}\n",
        "filter",
    ),
]


@pytest.mark.parametrize(("text", "key"), MAPPING_FAULTS)
def test_malformed_mapping_exits_2_naming_file_and_key(
    tmp_path: Path, text: str, key: str
) -> None:
    folder = tmp_path / "mappings"
    folder.mkdir()
    (folder / "case.yaml").write_text(text, encoding="utf-8")
    data = base_config()
    data["mappings"] = str(folder)
    config = kit.write_config(tmp_path / "config.yaml", data)
    result = invoke(config)
    assert_usage_error(result, folder / "case.yaml", None if key == "-" else key)


def test_config_errors_through_the_real_process_have_no_traceback(
    tmp_path: Path,
) -> None:
    data = base_config()
    put(data, "instance.page_size", "many")
    put(data, "sync.colour", "blue")
    path = kit.write_config(tmp_path / "bad.yaml", data)
    done = kit.run_cli(["check"], path, {})
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    for needle in (str(path), "instance.page_size", "sync.colour"):
        assert needle in done.stderr, done.stderr


# --- hostile records on the instance ------------------------------------------------

CASE = "sn_customerservice_case"
HOSTILE_VALUES: list[tuple[str, str]] = [
    ("priority", "high"),
    ("priority", "99999999999999999999999"),
    ("priority", "-9223372036854775809"),
    ("priority", "\uff19"),
    ("reassignment_count", "1.5"),
    ("made_sla", "maybe"),
    ("opened_at", "2026-02-30 10:00:00"),
    ("opened_at", "yesterday"),
    ("opened_at", "9999-12-31 23:59:59"),
    ("business_duration", "three days"),
    ("account", "Acme Corporation"),
    ("number", "x" * 100_000),
    ("number", "<script>alert(1)</script><b>bold</b>"),
    ("number", "ctl\x01\x02\x1b[31mred\x7f"),
    ("number", "nul\x00byte"),
    ("number", "\u202eevil\u200b\ufeff🙂"),
]


# Regression: canonical integer columns were INTEGER, 32-bit on PostgreSQL, so a
# value between 2**31 and 2**63 failed the page's upsert there (now BIGINT).
INT32_OVERFLOW = [("escalation", "3000000000")]
MUST_QUARANTINE = {
    "high",
    "1.5",
    "maybe",
    "2026-02-30 10:00:00",
    "yesterday",
    "three days",
    "Acme Corporation",
}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_hostile_records_are_quarantined_or_stored_faithfully(
    request: pytest.FixtureRequest, tmp_sqlite_url: str, backend: str
) -> None:
    store_url = (
        tmp_sqlite_url
        if backend == "sqlite"
        else request.getfixturevalue("fresh_pg_url")
    )
    tables = [CASE]
    hostile = HOSTILE_VALUES + INT32_OVERFLOW
    with EmulatorServer(accounts=3, seed=31) as emu:
        data = kit.config_data(emu, store_url, sync={"tables": tables})
        settings = settings_for(emu, data)
        assert all(r.ok for r in run_backfill(settings))
        cases = emu.instance.rows(CASE)
        assert len(cases) > len(hostile) + 5
        bad = {}
        for (column, value), row in zip(hostile, cases, strict=False):
            emu.instance.update(CASE, row["sys_id"], {column: value}, raw=True)
            bad[row["sys_id"]] = (column, value)
        time.sleep(1.1)
        results = run_incremental(settings)

        assert [r.error for r in results if not r.ok] == []
        quarantined = _quarantine(store_url)
        stored = kit.stored_rows(store_url, "case")
        mapping = kit.shipped_mappings(tables)[0]
        unsure = []
        for sys_id, (column, value) in bad.items():
            reason = quarantined.get(sys_id)
            if reason is not None:
                continue
            want = kit.expected_row(emu, mapping, emu.instance.get(CASE, sys_id))
            if kit.canon(stored[sys_id][column]) != kit.canon(want[column]):
                unsure.append((column, value[:40], stored[sys_id][column]))
        assert unsure == [], "neither quarantined nor stored faithfully"
        for sys_id, (column, value) in bad.items():
            if value in MUST_QUARANTINE:
                assert column in quarantined.get(sys_id, ""), (value, quarantined)
        assert kit.store_mismatches(emu, store_url, [mapping], ignore=set(bad)) == []


def _quarantine(store_url: str) -> dict[str, str]:
    store = open_store(store_url, migrate=False)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(select(QuarantinedRow)).all()
    finally:
        store.dispose()
    return {r.sys_id: f"{r.field}: {r.reason}" for r in rows}


def test_bad_yaml_values_dump_round_trip() -> None:
    """Guard for the generators above: every WRONG value survives YAML as given."""
    for values in WRONG.values():
        for value in values:
            assert yaml.safe_load(yaml.safe_dump({"v": value}))["v"] == value
