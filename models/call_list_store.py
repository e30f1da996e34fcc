"""Phone surveys in SQL: the call list interviewers work from."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from models.tables import SurveyInvitation


def phone_invitations(engine: Engine, invitation_ids: Sequence[str]) -> dict[str, SurveyInvitation]:
    """The phone invitations among *invitation_ids*, by id (detached rows)."""
    with Session(engine, expire_on_commit=False) as session:
        rows = session.execute(
            select(SurveyInvitation)
            .where(col(SurveyInvitation.invitation_id).in_(set(invitation_ids)))
            .where(col(SurveyInvitation.survey_channel) == "phone")
        ).scalars()
        return {r.invitation_id: r for r in rows}
