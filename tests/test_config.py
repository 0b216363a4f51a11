"""Config loading: paths anchored to the config file, secret warnings."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector.cli import app
from connector.config import anchor_sqlite_url, load_settings
from connector.errors import ConfigError

BASE = """\
instance:
  url: {url}
  auth:
    method: basic
    username: integration
    password: {password}
    client_secret: null
store:
  url: {store}
"""


def write(
    tmp_path: Path,
    *,
    password: str,
    store: str,
    mode: int,
    url: str = "https://acme.service-now.com",
) -> Path:
    path = tmp_path / "conf" / "config.yaml"
    path.parent.mkdir(exist_ok=True)
    text = BASE.format(password=password, store=store, url=url)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_a_relative_sqlite_store_is_anchored_to_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path, password="x", store="sqlite:///data/csm.db", mode=0o600)
    monkeypatch.chdir(tmp_path)

    settings = load_settings(config)

    assert settings.store.url == f"sqlite:///{tmp_path / 'conf' / 'data' / 'csm.db'}"


@pytest.mark.parametrize(
    "url",
    ["sqlite:////var/lib/csm.db", "sqlite:///:memory:", "postgresql+psycopg://h/db"],
)
def test_absolute_memory_and_server_urls_are_left_alone(url: str) -> None:
    assert anchor_sqlite_url(url, Path("/elsewhere")) == url


def test_an_env_reference_and_a_null_secret_do_not_warn(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("SN_PASSWORD", "from-env")
    config = write(
        tmp_path, password="${SN_PASSWORD}", store="sqlite:///c.db", mode=0o644
    )

    with caplog.at_level(logging.WARNING):
        settings = load_settings(config)

    assert settings.instance.auth.password.get_secret_value() == "from-env"
    assert "readable by other users" not in caplog.text


def test_a_literal_secret_in_a_shared_file_warns_without_showing_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = write(
        tmp_path, password="hunter2-literal", store="sqlite:///c.db", mode=0o644
    )

    with caplog.at_level(logging.WARNING):
        load_settings(config)

    assert "readable by other users" in caplog.text
    assert "hunter2-literal" not in caplog.text


def test_an_empty_password_from_the_environment_is_a_config_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SN_PASSWORD", "")
    config = write(
        tmp_path, password="${SN_PASSWORD}", store="sqlite:///c.db", mode=0o600
    )

    with pytest.raises(ConfigError) as caught:
        load_settings(config)

    assert [p.key for p in caught.value.problems] == ["instance.auth"]
    assert "needs password" in str(caught.value)


def test_broken_yaml_names_the_line_without_parser_internals(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("instance:\n  url: [unclosed\n", encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_settings(config)

    text = str(caught.value)
    assert text.startswith(f"{config}: line ")
    assert "<unicode string>" not in text


def test_a_key_given_twice_is_refused_with_its_line(tmp_path: Path) -> None:
    """Without this the second ``store:`` silently wins over the first."""
    config = tmp_path / "config.yaml"
    config.write_text(
        "store:\n  url: sqlite:///a.db\nmappings: m\nstore:\n  url: sqlite:///b.db\n",
        encoding="utf-8",
    )

    with pytest.raises(ConfigError) as caught:
        load_settings(config)

    assert str(caught.value) == (
        f"{config}: line 4: not valid YAML: duplicate key 'store'"
    )


def test_a_config_that_is_not_utf8_is_one_problem(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_bytes(b"instance:\n  url: http://caf\xe9\n")

    with pytest.raises(ConfigError) as caught:
        load_settings(config)

    assert str(caught.value) == f"{config}: not UTF-8 text (byte 27)"


def test_a_missing_file_reads_as_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "nope.yaml")

    assert str(caught.value).startswith(
        f"{tmp_path / 'nope.yaml'}: config file not found"
    )


@pytest.mark.parametrize(
    ("url", "extra"),
    [
        ("http://127.0.0.1:8080/now/nav/ui", "path '/now/nav/ui'"),
        ("https://acme.service-now.com/?sysparm_x=1", "query 'sysparm_x=1'"),
        ("https://acme.service-now.com#top", "fragment 'top'"),
    ],
)
def test_an_instance_url_beyond_the_base_is_a_config_problem_naming_file_and_key(
    tmp_path: Path, url: str, extra: str
) -> None:
    config = write(tmp_path, password="x", store="sqlite:///c.db", mode=0o600, url=url)

    result = CliRunner().invoke(app, ["check", "-c", str(config)])

    assert result.exit_code == 2
    assert f"{config}: instance.url: must be the instance's base URL" in result.stderr
    assert f"remove the {extra}" in result.stderr


def test_a_trailing_slash_on_the_instance_url_is_dropped(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        password="x",
        store="sqlite:///c.db",
        mode=0o600,
        url="https://acme.service-now.com:8443/",
    )

    settings = load_settings(config)

    assert settings.instance.url == "https://acme.service-now.com:8443"
