"""CLI commands of the sync role (registered on the shared app)."""

from __future__ import annotations

from connector.cli import app  # noqa: F401
