"""Which survey a link's token belongs to: the invitation's own token or a reminder's."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session, col

from models.store.tables import SurveyInvitation, SurveyReminder


def invitation_by_token(session: Session, token_hash: str) -> SurveyInvitation | None:
    """The invitation behind a token hash, open or not; None for an unknown token."""
    row: SurveyInvitation | None = session.execute(
        select(SurveyInvitation).where(col(SurveyInvitation.token_hash) == token_hash)
    ).scalar_one_or_none()
    if row is None:  # a reminder's link carries a token of its own
        row = session.execute(
            select(SurveyInvitation)
            .join(
                SurveyReminder,
                col(SurveyReminder.invitation_id) == col(SurveyInvitation.invitation_id),
            )
            .where(col(SurveyReminder.token_hash) == token_hash)
        ).scalar_one_or_none()
    return row
