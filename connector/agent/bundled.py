"""Files csm-sync ships with: the default mappings, found installed or in a checkout.

The mappings live once, in ``mappings/`` at the repository root;
``connector/default_mappings`` is a symlink to it, which setuptools resolves when it
builds a wheel, so an installed package carries real copies as package data.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from connector.errors import ConfigError, Problem

PACKAGE_FOLDER = "default_mappings"


def default_mappings_dir() -> Path:
    """Return the folder of the default mapping files.

    Raises:
        ConfigError: Neither the package data nor a source checkout has them.
    """
    candidates = [
        Path(str(resources.files("connector") / PACKAGE_FOLDER)),
        Path(__file__).resolve().parents[2] / "mappings",
    ]
    for folder in candidates:
        if folder.is_dir() and any(folder.glob("*.yaml")):
            return folder
    raise ConfigError(
        Problem(
            "csm-sync",
            "default mappings",
            "not found in the installed package (connector/default_mappings); "
            "reinstall csm-sync or pass a mappings folder in the config",
        )
    )
