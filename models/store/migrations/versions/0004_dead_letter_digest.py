"""dead letter digest: dead_letters.original_size and original_sha256.

A too_large message keeps only its first 64 KiB in dead_letters.original; the size and
SHA-256 of the whole message say what it was. Rows from before stay null in both.

Revision ID: 0004_dead_letter_digest
Revises: 0003_utc_iso_timestamps
Create Date: 2026-12-04 17:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004_dead_letter_digest"
down_revision: str | None = "0003_utc_iso_timestamps"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "original_size",
                sa.Integer(),
                nullable=True,
                comment="size of the whole original message in bytes (original holds only "
                "the first 65536 of a too_large one); null for a null value and letters "
                "before v2",
            )
        )
        batch_op.add_column(
            sa.Column(
                "original_sha256",
                sa.String(length=64),
                nullable=True,
                comment="SHA-256 (hex) of the whole original message; null as for original_size",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.drop_column("original_sha256")
        batch_op.drop_column("original_size")
