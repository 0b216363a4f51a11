"""CLI commands of the emulator role (registered on the shared app)."""

from __future__ import annotations

from connector.cli import app  # noqa: F401
