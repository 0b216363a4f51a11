"""config.example.yaml loads as is and documents every setting."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from connector.config import Settings, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"


def missing_keys(model: type[BaseModel], data: dict, prefix: str = "") -> list[str]:
    missing = []
    for name, info in model.model_fields.items():
        if name == "base_dir":
            continue
        if name not in data:
            missing.append(prefix + name)
            continue
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            missing += missing_keys(kind, data[name] or {}, f"{prefix}{name}.")
    return missing


def test_the_example_loads_and_names_every_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SN_PASSWORD", "not-a-secret")
    copy = tmp_path / "config.yaml"
    copy.write_text(EXAMPLE.read_text())
    copy.chmod(0o600)

    settings = load_settings(copy)

    assert settings.instance.auth.password.get_secret_value() == "not-a-secret"
    assert missing_keys(Settings, yaml.safe_load(EXAMPLE.read_text())) == []
    # The example's values are the defaults; only the store path is anchored to the
    # config file's folder.
    defaults = Settings.model_validate({"instance": settings.instance.model_dump()})
    expected = defaults.model_dump(exclude={"instance", "base_dir", "mappings"})
    expected["store"]["url"] = f"sqlite:///{tmp_path / 'csm.db'}"
    assert settings.model_dump(exclude={"instance", "base_dir", "mappings"}) == expected
