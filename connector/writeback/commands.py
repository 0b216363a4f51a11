"""CLI commands of the writeback role (registered on the shared app)."""

from __future__ import annotations

from connector.cli import app  # noqa: F401
