"""Settings: one typed model, loaded from YAML with ``${ENV}`` interpolation.

The config path comes from ``-c/--config``, else ``CSM_SYNC_CONFIG``, else
``./config.yaml``. Every validation problem is collected and raised together as a
:class:`~connector.errors.ConfigError` (exit status 2). Secrets are
:class:`pydantic.SecretStr` so they never print.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import SplitResult, urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from connector import yamlfile
from connector.errors import ConfigError, Problem

CONFIG_ENV = "CSM_SYNC_CONFIG"
DEFAULT_CONFIG = "config.yaml"
logger = logging.getLogger(__name__)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _blank(value: str | SecretStr | None) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return value is None or not value.strip()


class AuthSettings(_Section):
    """How csm-sync proves who it is to the instance."""

    method: Literal["basic", "oauth_password", "oauth_client_credentials"] = "basic"
    username: str | None = None
    password: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None

    @model_validator(mode="after")
    def _check_method_fields(self, info: ValidationInfo) -> AuthSettings:
        context = info.context or {}
        if not context.get("needs_instance", True):
            return self
        needed = {
            "basic": ("username", "password"),
            "oauth_password": ("username", "password", "client_id", "client_secret"),
            "oauth_client_credentials": ("client_id", "client_secret"),
        }[self.method]
        # A field whose ${VAR} is unset is already reported under its own key.
        reported = context.get("unset_auth_fields", frozenset())
        missing = [
            name
            for name in needed
            if _blank(getattr(self, name)) and name not in reported
        ]
        if missing:
            raise ValueError(f"auth method {self.method!r} needs {', '.join(missing)}")
        return self


def _has_valid_port(parts: SplitResult) -> bool:
    try:
        return parts.port is None or parts.port >= 0
    except ValueError:  # not a number, or out of range
        return False


def _instance_base_url(value: str) -> str:
    """The URL without a trailing slash, refused when it carries more than a base.

    The client appends /api/now/... itself; a URL copied from the browser
    (``/now/nav/ui``) would otherwise fail later as a puzzling 400 from the instance.
    """
    parts = urlsplit(value)
    extras = [
        f"{name} {text!r}"
        for name, text in (
            ("path", parts.path.rstrip("/")),
            ("query", parts.query),
            ("fragment", parts.fragment),
        )
        if text
    ]
    if extras:
        raise ValueError(
            "must be the instance's base URL: scheme, host and optional port, "
            f"e.g. https://acme.service-now.com; remove the {' and '.join(extras)}"
        )
    if not _has_valid_port(parts):
        raise ValueError(
            f"port {parts.netloc.rpartition(':')[2]!r} is not a number from 0 to 65535"
        )
    return f"{parts.scheme}://{parts.netloc}"


class InstanceSettings(_Section):
    """The ServiceNow instance (or emulator) to talk to."""

    url: str
    auth: AuthSettings
    verify_tls: bool = True
    ca_file: Path | None = None
    timeout_seconds: float = Field(60.0, gt=0)
    page_size: int = Field(1000, ge=10, le=10000)
    max_retries: int = Field(8, ge=0, le=100)
    backoff_cap_seconds: float = Field(60.0, gt=0)
    retry_after_ceiling_seconds: float = Field(900.0, ge=0)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(
                "expected an http(s) URL such as https://acme.service-now.com"
            )
        return _instance_base_url(value)


class StoreSettings(_Section):
    """Where the local copy lives."""

    url: str = "sqlite:///csm.db"
    batch_size: int = Field(500, ge=1, le=10000)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql")):
            raise ValueError("expected sqlite:///PATH or postgresql+psycopg://...")
        return value


class SyncSettings(_Section):
    """Incremental and backfill behaviour."""

    lag_seconds: int = Field(5, ge=0, le=3600)
    workers: int = Field(4, ge=1, le=32)
    # Backfill slices: None = cut by row count (about ``slice_pages`` pages each,
    # at least one per worker); a number of days = fixed-length time slices.
    slice_days: int | None = Field(None, ge=1, le=3650)
    slice_pages: int = Field(50, ge=1, le=10000)
    backfill_since: date | None = None
    tables: list[str] | None = None
    reconcile_deletes: bool = True


class HealthComponent(_Section):
    """One health-score component: its weight and the bad/good values."""

    weight: float = Field(ge=0)
    bad: float
    good: float


def _default_components() -> dict[str, HealthComponent]:
    return {
        "adoption": HealthComponent(weight=25, bad=0.2, good=0.8),
        "support": HealthComponent(weight=20, bad=3.0, good=0.0),
        "nps": HealthComponent(weight=15, bad=-50, good=50),
        "csat": HealthComponent(weight=15, bad=40, good=90),
        "engagement": HealthComponent(weight=10, bad=120, good=14),
        "commercial": HealthComponent(weight=15, bad=0, good=100),
    }


class KpiSettings(_Section):
    """KPI parameters; defaults follow DESIGN.md."""

    nps_metric: str | None = None
    csat_metric: str | None = None
    nps_window_days: int = Field(365, ge=1)
    nps_min_sample: int = Field(5, ge=1)
    csat_window_days: int = Field(90, ge=1)
    fcr_window_days: int = Field(90, ge=1)
    fcr_reopen_days: int = Field(7, ge=0)
    fcr_max_interactions: int = Field(1, ge=0)
    fcr_rules: list[
        Literal["no_reassignment", "no_awaiting_info", "no_reopen", "max_interactions"]
    ] = ["no_reassignment", "no_awaiting_info", "no_reopen", "max_interactions"]
    health_components: dict[str, HealthComponent] = Field(
        default_factory=_default_components
    )
    health_min_weight_share: float = Field(0.6, ge=0, le=1)
    band_green: float = 70
    band_yellow: float = 40
    trend_days: int = Field(28, ge=1)
    gross_margin: float = Field(0.75, ge=0, le=1)
    cltv_max_months: float = Field(60, gt=0)
    csm_responsibility: str = "Account Manager"
    ttv_utilisation: float = Field(0.5, gt=0, le=1)
    expansion_window_days: int = Field(365, ge=1)
    coverage_days: int = Field(90, ge=1)
    support_window_days: int = Field(90, ge=1)


class WritebackFields(_Section):
    """Names of the account fields health is written to; None skips a field."""

    score: str | None = "u_health_score"
    band: str | None = "u_health_band"
    trend: str | None = "u_health_trend"
    nps: str | None = "u_nps"
    reason: str | None = "u_health_reason"
    updated: str | None = "u_health_updated"


class WritebackSettings(_Section):
    """Write-back of health scores onto customer_account."""

    enabled: bool = True
    # Only customer_account passes the write-back guard; kept as a key so a
    # config naming another table is refused with a clear message.
    table: str = "customer_account"
    fields: WritebackFields = WritebackFields()
    batch_threshold: int = Field(20, ge=1)
    batch_size: int = Field(50, ge=1, le=500)
    history: bool = False


class DaemonSettings(_Section):
    """Schedules and the operator endpoint."""

    sync_interval_seconds: int = Field(900, ge=1)
    reconcile_interval_seconds: int = Field(86400, ge=1)
    http: str = "127.0.0.1:9464"
    # The endpoint has no auth; a non-loopback address must be asked for on purpose.
    http_allow_remote: bool = False
    max_staleness_seconds: int = Field(3600, ge=1)
    max_failures: int = Field(5, ge=1)
    failure_window_seconds: int = Field(3600, ge=1)


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class Settings(_Section):
    """The whole csm-sync configuration."""

    instance: InstanceSettings
    store: StoreSettings = StoreSettings()
    mappings: Path = Path("mappings")
    sync: SyncSettings = SyncSettings()
    kpi: KpiSettings = KpiSettings()
    writeback: WritebackSettings = WritebackSettings()
    daemon: DaemonSettings = DaemonSettings()
    logging: LoggingSettings = LoggingSettings()
    # Folder the config was read from; relative paths resolve against it.
    base_dir: Annotated[Path, Field(exclude=True)] = Path(".")

    @property
    def mappings_dir(self) -> Path:
        return (
            self.mappings
            if self.mappings.is_absolute()
            else self.base_dir / self.mappings
        )


def resolve_config_path(explicit: str | os.PathLike[str] | None) -> Path:
    """Pick the config path: the flag, else ``$CSM_SYNC_CONFIG``, else config.yaml."""
    if explicit:
        return Path(explicit)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    return Path(DEFAULT_CONFIG)


def interpolate_env(
    value: Any, *, source: str, problems: list[Problem], key: str = ""
) -> Any:
    """Replace ``${VAR}`` (or ``${VAR:-default}``) in every string of a YAML tree."""
    if isinstance(value, dict):
        return {
            k: interpolate_env(
                v, source=source, problems=problems, key=f"{key}.{k}" if key else str(k)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            interpolate_env(v, source=source, problems=problems, key=f"{key}[{i}]")
            for i, v in enumerate(value)
        ]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        problems.append(Problem(source, key, f"environment variable {name} is not set"))
        return ""

    return _ENV_REF.sub(replace, value)


def _problems_from_validation(error: ValidationError, source: str) -> list[Problem]:
    problems = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "-"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling against config.example.yaml)"
        elif item["type"] == "missing":
            message = "required key is missing"
        problems.append(Problem(source, key, message))
    return problems


SECRET_KEYS = frozenset({"password", "client_secret"})


def _literal_secrets(tree: Any) -> bool:
    """True when a secret key holds a literal value rather than an ${ENV} reference."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key in SECRET_KEYS and isinstance(value, str | int | float):
                text = str(value).strip()
                if text and not _ENV_REF.fullmatch(text):
                    return True
            elif _literal_secrets(value):
                return True
    elif isinstance(tree, list):
        return any(_literal_secrets(item) for item in tree)
    return False


def warn_if_world_readable(path: Path, raw: Any) -> None:
    """Warn when a config file that holds a literal secret is readable by others."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO) and _literal_secrets(raw):
        logger.warning(
            "Config %s holds a secret and is readable by other users; "
            "run 'chmod 600' on it or use ${ENV} references",
            path,
        )


def anchor_sqlite_url(url: str, base_dir: Path) -> str:
    """Resolve a relative SQLite path against the config's folder, like ``mappings``.

    Without this, ``sqlite:///csm.db`` would follow the working directory, and a
    cron job or unit started elsewhere would silently begin an empty store.
    """
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return url
    path = url[len(prefix) :]
    if not path or path.startswith((":memory:", "file:")) or Path(path).is_absolute():
        return url
    return prefix + str((base_dir / path).resolve())


def _anchor_store(data: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    store = data.get("store")
    if isinstance(store, dict) and isinstance(store.get("url"), str):
        data = {
            **data,
            "store": {**store, "url": anchor_sqlite_url(store["url"], base_dir)},
        }
    return data


AUTH_KEY_PREFIX = "instance.auth."


def _unset_auth_fields(problems: list[Problem]) -> frozenset[str]:
    """Auth fields whose ``${VAR}`` was unset (already reported once)."""
    return frozenset(
        p.key.removeprefix(AUTH_KEY_PREFIX)
        for p in problems
        if p.key.startswith(AUTH_KEY_PREFIX)
    )


def load_settings(
    path: str | os.PathLike[str] | None = None, *, needs_instance: bool = True
) -> Settings:
    """Load, interpolate and validate the config; ConfigError lists every problem.

    Args:
        path: the config file; see :func:`resolve_config_path`.
        needs_instance: False for commands that only read the local store
            (status, kpis, report): the instance's credentials are then not
            required, so they run where the instance secret is not set.
    """
    config_path = resolve_config_path(path)
    source = str(config_path)
    if not config_path.is_file():
        raise ConfigError(
            Problem(
                source,
                "-",
                "config file not found; pass -c FILE, set CSM_SYNC_CONFIG, or copy "
                "config.example.yaml to config.yaml",
            )
        )
    try:
        raw = yamlfile.load(config_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            Problem(source, "-", f"not UTF-8 text (byte {exc.start})")
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "-"
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(Problem(source, where, f"not valid YAML: {reason}")) from None
    if not isinstance(raw, dict):
        raise ConfigError(
            Problem(source, "-", "expected a mapping of settings at the top")
        )

    warn_if_world_readable(config_path, raw)
    problems: list[Problem] = []
    try:
        data = interpolate_env(raw, source=source, problems=problems)
    except RecursionError:
        # An alias inside its own anchor (``a: &x [*x]``) makes an endless tree.
        raise ConfigError(
            Problem(source, "-", "a YAML alias refers to its own anchor (endless)")
        ) from None
    data["base_dir"] = config_path.resolve().parent
    data = _anchor_store(data, data["base_dir"])
    if not needs_instance:
        problems = [p for p in problems if not p.key.startswith(AUTH_KEY_PREFIX)]
    context = {
        "needs_instance": needs_instance,
        "unset_auth_fields": _unset_auth_fields(problems),
    }
    try:
        settings = Settings.model_validate(data, context=context)
    except ValidationError as exc:
        problems.extend(_problems_from_validation(exc, source))
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    return settings


def settings_from_dict(
    data: dict[str, Any], *, base_dir: Path | None = None
) -> Settings:
    """Validate settings built in code (the demo, tests); same rules as a file."""
    payload = _anchor_store(dict(data), base_dir) if base_dir else dict(data)
    payload["base_dir"] = base_dir or Path(".")
    try:
        return Settings.model_validate(payload)
    except ValidationError as exc:
        raise ConfigError(_problems_from_validation(exc, "<settings>")) from None
