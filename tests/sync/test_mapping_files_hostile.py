"""Hostile mapping files through the CLI: exit 2, a clear message, no traceback.

Each run of the CLI gets 1.5 GB of address space and a time limit: a loader
that expands an alias bomb, prints a whole tree or reads a device fails them.
"""

from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path

import pytest

from connector.emulator.server import EmulatorServer

from .test_cli import CSM_SYNC, copy_mappings, csm_sync, write_config

ADDRESS_SPACE = 1536 * 2**20


def capped(
    emulator: EmulatorServer, config: Path, command: str = "check", timeout: int = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``csm-sync COMMAND -c CONFIG`` with bounded memory and time."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    try:
        return subprocess.run(
            [CSM_SYNC, command, "-c", str(config)],
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=cap,
            env=dict(os.environ, SN_PASSWORD=emulator.admin_password),
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"csm-sync {command} hung on a mapping file for {timeout} s")


HOSTILE = {
    # a YAML complex key (a sequence) in a mapping
    "list_key": b"source: customer_account\n? [a, b]\n: 1\n",
    # a flow mapping used as a key
    "map_key": b"source: customer_account\n{a: 1}: 2\n",
    # a complex key inside fields
    "field_list_key": b"source: x\ntarget: case\nfields:\n  ? [number]\n  : number\n",
    # Latin-1 bytes, not UTF-8
    "latin1": b"source: customer_account\n# caf\xe9\ntarget: account\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_mapping_exits_2_without_traceback(
    tmp_path: Path, emulator: EmulatorServer, name: str
) -> None:
    mappings = copy_mappings(tmp_path, ["customer_account"])
    bad = mappings / "zz_hostile.yaml"
    bad.write_bytes(HOSTILE[name])
    config = write_config(tmp_path, emulator, mappings)

    result = csm_sync(emulator, "check", "-c", str(config))

    assert "Traceback" not in result.stderr, result.stderr[-1500:]
    assert result.returncode == 2, (result.returncode, result.stderr[-800:])
    assert str(bad) in result.stderr


def test_huge_mapping_file_is_refused_briefly(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    """A 3.6 MB mapping of 200,000 unknown columns: refused by size, not listed
    column by column in a 75 MB message."""
    mappings = copy_mappings(tmp_path, ["customer_account"])
    bad = mappings / "zz_huge.yaml"
    with bad.open("w") as out:
        out.write("source: x\ntarget: case\nfields:\n")
        for i in range(200_000):
            out.write(f"  c{i}: f{i}\n")
    config = write_config(tmp_path, emulator, mappings)

    result = capped(emulator, config, timeout=30)

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{bad}" in result.stderr and "larger than" in result.stderr
    assert len(result.stderr) < 10_000


def _bomb(levels: str = "abcdefghi") -> str:
    """Nine levels of ten aliases: a billion "x" once expanded."""
    items, prev = [], '"x"'
    for name in levels:
        items.append(f"&{name} [" + ", ".join([prev] * 10) + "]")
        prev = f"*{name}"
    return "[" + ", ".join(items) + "]"


@pytest.mark.parametrize(
    "where",
    ["mode: BOMB\n", "fields:\n  number: {field: number, type: BOMB}\n"],
    ids=["mode", "field_type"],
)
def test_an_alias_bomb_where_a_word_is_expected_is_refused_without_eating_memory(
    tmp_path: Path, emulator: EmulatorServer, where: str
) -> None:
    mappings = copy_mappings(tmp_path, ["customer_account"])
    bad = mappings / "zz_bomb.yaml"
    text = "source: sn_customerservice_case\ntarget: case\n"
    if not where.startswith("fields"):
        text += "fields:\n  number: number\n"
    bad.write_text(text + where.replace("BOMB", _bomb()))
    config = write_config(tmp_path, emulator, mappings)

    result = capped(emulator, config)

    assert "Traceback" not in result.stderr, result.stderr[-300:]
    assert result.returncode == 2
    assert str(bad) in result.stderr
    assert len(result.stderr) < 100_000


@pytest.mark.parametrize("section", ["defaults", "values"])
def test_an_alias_bomb_in_defaults_or_values_is_refused_at_load(
    tmp_path: Path, emulator: EmulatorServer, section: str
) -> None:
    """Defaults and value maps take scalars only: a tree there is refused by
    ``check`` and never reaches the row mapper, which would str() it."""
    mappings = copy_mappings(tmp_path, ["customer_account"])
    bad = mappings / "zz_bomb.yaml"
    value = _bomb() if section == "defaults" else "{CS1: " + _bomb() + "}"
    bad.write_text(
        "source: sn_customerservice_case\ntarget: case\nfields:\n"
        "  number: number\n  priority: {field: priority, type: integer}\n"
        f"{section}:\n  priority: {value}\n"
    )
    config = write_config(tmp_path, emulator, mappings)

    check = capped(emulator, config)
    sync = capped(emulator, config, "sync")

    for result in (check, sync):
        assert "Traceback" not in result.stderr, result.stderr[-300:]
        assert result.returncode == 2
        assert str(bad) in result.stderr


@pytest.mark.parametrize("kind", ["fifo", "dev_zero"])
def test_a_mapping_that_is_not_a_regular_file_is_refused(
    tmp_path: Path, emulator: EmulatorServer, kind: str
) -> None:
    mappings = copy_mappings(tmp_path, ["customer_account"])
    bad = mappings / "zz_odd.yaml"
    if kind == "fifo":
        os.mkfifo(bad)
    else:
        bad.symlink_to("/dev/zero")
    config = write_config(tmp_path, emulator, mappings)

    result = capped(emulator, config, timeout=30)

    assert "Traceback" not in result.stderr, result.stderr[-300:]
    assert result.returncode == 2
    assert "not a regular file" in result.stderr
