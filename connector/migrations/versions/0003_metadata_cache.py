"""metadata cache: the instance's dictionary as last verified

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 20:05:00

A no-op sync re-read the whole dictionary and the choice lists every pass
(~70 requests for the shipped mappings); now it checks a saved copy with one
request per metadata table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A store adopted from create_all (engine._adopt_unversioned) has it already.
    if sa.inspect(op.get_bind()).has_table("metadata_cache"):
        return
    op.create_table(
        "metadata_cache",
        sa.Column(
            "instance", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False
        ),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.Column("saved_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("instance"),
    )


def downgrade() -> None:
    op.drop_table("metadata_cache")
