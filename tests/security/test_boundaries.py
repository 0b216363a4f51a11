"""Security boundaries: TLS on by default, a data-free loopback metrics endpoint,
a write allow-list no config can widen, and an emulator that stays on loopback.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability import kit
from reliability.crash import settings_for
from typer.testing import CliRunner

from connector.cli import app
from connector.config import DaemonSettings, settings_from_dict
from connector.emulator.server import EmulatorServer
from connector.errors import ConfigError, CsmSyncError
from connector.writeback import install_fields, run_writeback

# --- TLS -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(accounts=2, seed=43, tls=True) as emu:
        yield emu


def test_an_untrusted_certificate_fails_the_cli_clearly_and_a_ca_file_fixes_it(
    tls_emulator: EmulatorServer, tmp_path: Path
) -> None:
    emu = tls_emulator
    store = f"sqlite:///{tmp_path / 'store.db'}"
    tables = {"tables": ["customer_account"]}
    default = kit.write_config(
        tmp_path / "default.yaml", kit.config_data(emu, store, sync=tables)
    )
    trusted = kit.write_config(
        tmp_path / "trusted.yaml",
        kit.config_data(emu, store, sync=tables, instance={"ca_file": emu.ca_file}),
    )
    env = kit.cli_env(emu)

    refused = kit.run_cli(["backfill"], default, env)
    accepted = kit.run_cli(["backfill"], trusted, env)

    assert refused.returncode == 1, refused.stderr
    assert "Traceback" not in refused.stderr
    assert "certificate" in refused.stderr.lower()
    assert "ca_file" in refused.stderr  # names the fix
    assert accepted.returncode == 0, accepted.stderr
    assert (
        kit.store_mismatches(emu, store, kit.shipped_mappings(["customer_account"]))
        == []
    )


def test_tls_verification_is_on_unless_switched_off() -> None:
    data = {"instance": {"url": "https://x.service-now.com", "auth": _basic()}}
    assert settings_from_dict(data).instance.verify_tls is True


def _basic() -> dict[str, str]:
    return {"method": "basic", "username": "u", "password": "p"}


# --- the operator endpoint ---------------------------------------------------------


def test_the_endpoint_defaults_to_loopback_and_refuses_public_addresses() -> None:
    from connector.agent.endpoint import is_loopback, parse_listen

    host, _ = parse_listen(DaemonSettings().http, allow_remote=False)
    assert is_loopback(host)
    for address in ("0.0.0.0:9464", "[::]:9464", "10.0.0.5:9464", "example.com:80"):
        with pytest.raises(ConfigError) as refused:
            parse_listen(address, allow_remote=False)
        assert "daemon.http" in str(refused.value.problems[0])


def test_metrics_and_health_carry_no_customer_data_and_listen_on_loopback(
    tmp_path: Path,
) -> None:
    from agent.daemon_harness import (
        Agent,
        free_port,
        start_emulator,
        sync_runs,
        wait_for,
        write_config,
    )

    emu = start_emulator(accounts=6)
    try:
        port = free_port()
        config = write_config(tmp_path, emu.url, emu.instance.truth, http_port=port)
        agent = Agent(config, tmp_path / "run.log")
        try:
            wait_for(
                lambda: sync_runs(port) >= 1, timeout=120, what="a sync", agent=agent
            )
            metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).text
            listening = _listen_addresses(port)
        finally:
            agent.kill()
        customer = _customer_strings(emu)
    finally:
        emu.stop()

    assert "csm_sync_" in metrics  # the endpoint served real metrics
    assert len(customer) > 20
    exposed = sorted(s for s in customer if s in metrics or s in health)
    assert exposed == []
    assert listening == {"127.0.0.1"}


def _customer_strings(emu: EmulatorServer) -> set[str]:
    """Account and contact names, e-mails and sys_ids of the instance."""
    found: set[str] = set()
    for table, fields in (
        ("customer_account", ("sys_id", "name", "number")),
        ("customer_contact", ("sys_id", "name", "email")),
        ("sn_customerservice_case", ("sys_id", "number")),
    ):
        for row in emu.instance.rows(table):
            found.update(row[f] for f in fields if len(row.get(f) or "") >= 6)
    return found


def _listen_addresses(port: int) -> set[str]:
    """Local addresses of sockets listening on ``port`` (from /proc/net/tcp*)."""
    found = set()
    for name in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
            parts = line.split()
            address, port_hex = parts[1].rsplit(":", 1)
            if int(port_hex, 16) == port and parts[3] == "0A":  # LISTEN
                found.add(_ip(address))
    return found


def _ip(hex_address: str) -> str:
    if len(hex_address) == 8:
        return ".".join(str(int(hex_address[i : i + 2], 16)) for i in (6, 4, 2, 0))
    return hex_address


# --- the write-back allow-list ---------------------------------------------------


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An instance with health fields installed and a store with health scores."""
    from connector.kpi import compute_kpis, store_snapshot, utc_today
    from connector.store.engine import open_store
    from connector.sync.backfill import run_backfill

    folder = tmp_path_factory.mktemp("allow-list")
    with EmulatorServer(accounts=4, seed=45) as emu:
        store_url = f"sqlite:///{folder / 'store.db'}"
        auth = {"username": emu.admin_user, "password": emu.admin_password}
        data = kit.config_data(emu, store_url, auth=auth)
        run_backfill(settings_for(emu, data))
        store = open_store(store_url)
        try:
            kpis = compute_kpis(
                store.engine, settings_for(emu, data).kpi, as_of=utc_today()
            )
            store_snapshot(store.engine, kpis)
        finally:
            store.dispose()
        install_fields(settings_for(emu, data))
        yield {"emu": emu, "data": data, "spy": WriteSpy(emu)}


class WriteSpy:
    """Every insert/update/delete the emulator applies: (op, table, fields)."""

    def __init__(self, emu: EmulatorServer) -> None:
        self.calls: list[tuple[str, str, frozenset[str]]] = []
        instance = emu.instance
        update, insert, delete = instance.update, instance.insert, instance.delete

        def spy_update(table: str, sys_id: str, values: dict, **kw: Any) -> Any:
            self.calls.append(("update", table, frozenset(values)))
            return update(table, sys_id, values, **kw)

        def spy_insert(table: str, values: dict, **kw: Any) -> Any:
            self.calls.append(("insert", table, frozenset(values)))
            return insert(table, values, **kw)

        def spy_delete(table: str, sys_id: str, **kw: Any) -> Any:
            self.calls.append(("delete", table, frozenset()))
            return delete(table, sys_id, **kw)

        instance.update = spy_update  # type: ignore[method-assign]
        instance.insert = spy_insert  # type: ignore[method-assign]
        instance.delete = spy_delete  # type: ignore[method-assign]


CUSTOM = re.compile(r"^u_[a-z0-9]+(?:_[a-z0-9]+)*$")
DEFAULT_FIELDS = frozenset(
    {
        "u_health_score",
        "u_health_band",
        "u_health_trend",
        "u_nps",
        "u_health_reason",
        "u_health_updated",
    }
)
HOSTILE_NAMES = st.sampled_from(
    [
        "name",
        "sys_id",
        "number",
        "active",
        "u_health_score^name=x",
        "u_health_score,name",
        "U_HEALTH_SCORE",
        "u_health score",
        "u_",
        "sys_updated_on",
        "u_health_score\nname",
        "../u_x",
        "name.u_x",
        "u_health_score;drop",
    ]
) | st.text(max_size=12)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    table=st.sampled_from(["customer_account", "sys_user", "customer_contact", ""]),
    fields=st.dictionaries(
        st.sampled_from(["score", "band", "trend", "nps", "reason", "updated"]),
        HOSTILE_NAMES,
        max_size=3,
    ),
    history=st.booleans(),
)
def test_no_config_makes_write_back_touch_a_field_outside_its_allow_list(
    scored: dict[str, Any], table: str, fields: dict[str, str], history: bool
) -> None:
    spy, emu = scored["spy"], scored["emu"]
    for row in emu.instance.rows("customer_account"):  # so there is work to do
        emu.instance.update(
            "customer_account", row["sys_id"], dict.fromkeys(DEFAULT_FIELDS, "")
        )
    spy.calls.clear()
    data = dict(scored["data"])
    data["writeback"] = {"table": table, "fields": fields, "history": history}
    try:
        run_writeback(settings_from_dict(data))
    except ConfigError as refused:
        assert any(p.key.startswith("writeback") for p in refused.problems)
    except CsmSyncError:
        pass  # refused by the guard or failed on the instance; checked below
    custom = {v for v in fields.values() if CUSTOM.match(v)}
    allowed = DEFAULT_FIELDS | custom
    if table == "customer_account" and not fields and not history:
        assert spy.calls, "a valid config must write (else this test is vacuous)"
    for op, target, names in spy.calls:
        if op == "update" and target == "customer_account":
            assert names <= allowed, names - allowed
        else:
            assert (op, target) == ("insert", "u_csm_health_snapshot"), (op, target)
            assert history and all(n.startswith("u_") for n in names), names


# --- the emulator ----------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.com"])
def test_the_emulator_refuses_a_non_loopback_bind_by_default(host: str) -> None:
    result = CliRunner().invoke(app, ["emulator", "--host", host, "--accounts", "0"])
    assert result.exit_code == 2, result.output
    assert "loopback" in result.output
