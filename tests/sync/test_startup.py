"""The csm-sync script imports only the role module of the command it runs."""

from __future__ import annotations

import subprocess
import sys

OTHER_ROLES = ("connector.kpi", "connector.writeback", "connector.agent")


def loaded_after(argv: list[str]) -> set[str]:
    """Modules of the other roles loaded by importing the CLI under ``argv``."""
    code = (
        "import sys\n"
        f"sys.argv = {argv!r}\n"
        "import connector.cli\n"
        f"print(' '.join(m for m in sys.modules if m.startswith({OTHER_ROLES!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return set(out.stdout.split())


def test_a_sync_loads_no_other_role_and_help_loads_every_command() -> None:
    sync = loaded_after(["/venv/bin/csm-sync", "--debug", "sync", "-c", "x.yaml"])
    help_ = loaded_after(["/venv/bin/csm-sync", "--help"])
    unknown = loaded_after(["/venv/bin/csm-sync", "no-such-command"])
    imported = loaded_after(["pytest", "sync"])  # not the script: everything

    assert sync == set()
    for loaded in (help_, unknown, imported):
        assert {"connector.kpi.commands", "connector.agent.commands"} <= loaded
