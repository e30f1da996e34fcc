"""Lineage: from a customer contact to everything it caused, in one query.

contact event → survey decision → invitation (and its delivery) → reminders → response →
each answer (with its score) → follow-up task → task events → the staff action behind each
event → the recovery response. The view bi_lineage (migration 0002) is this query; it uses
LEFT JOINs only, so a contact that was never surveyed still has its row, and plain SQL that
SQLite and PostgreSQL both run. A complaint's task hangs off the contact itself.

One row per combination of reminder × answer × task event, as joins do; BI tools filter or
count DISTINCT on the ids. Every id is the table's stable primary key.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text

LINEAGE_VIEW = "bi_lineage"

LINEAGE_SQL = """
SELECT
    ce.event_id AS contact_event_id,
    ce.occurred_at AS contact_occurred_at,
    ce.customer_id AS customer_id,
    ce.kind AS contact_kind,
    ce.channel AS contact_channel,
    ce.partner AS partner,
    ce.product AS product,
    ce.case_id AS case_id,
    ce.inquiry_type AS inquiry_type,
    ce.team AS contact_team,
    sd.decision_id AS decision_id,
    sd.programme AS programme,
    sd.outcome AS decision_outcome,
    sd.reason AS decision_reason,
    sd.decided_at AS decided_at,
    si.invitation_id AS invitation_id,
    si.created_at AS invitation_created_at,
    si.survey_channel AS survey_channel,
    si.delivery_status AS delivery_status,
    si.delivery_attempts AS delivery_attempts,
    si.sent_at AS invitation_sent_at,
    rm.reminder_id AS reminder_id,
    rm.number AS reminder_number,
    rm.delivery_status AS reminder_status,
    rm.sent_at AS reminder_sent_at,
    sr.response_id AS response_id,
    sr.submitted_at AS response_submitted_at,
    sr.nps AS nps,
    sr.nps_category AS nps_category,
    sr.csat AS csat,
    sr.csat_satisfied AS csat_satisfied,
    sr.ces AS ces,
    sr.scored_at AS scored_at,
    sa.question AS answer_question,
    sa.value_number AS answer_number,
    sa.value_text AS answer_text,
    ft.task_id AS task_id,
    ft.origin AS task_origin,
    ft.team AS task_team,
    ft.status AS task_status,
    ft.opened_at AS task_opened_at,
    ft.contacted_at AS task_contacted_at,
    ft.informed_at AS task_informed_at,
    ft.closed_at AS task_closed_at,
    ft.root_cause AS root_cause,
    te.event_id AS task_event_id,
    te.seq AS task_event_seq,
    te.event_type AS task_event_type,
    te.to_status AS task_event_status,
    te.occurred_at AS task_event_at,
    fa.action_id AS action_id,
    fa.type AS action_type,
    fa.actor AS action_actor,
    fa.recorded_at AS action_recorded_at,
    rr.response_id AS recovery_response_id,
    rr.submitted_at AS recovery_submitted_at,
    rr.nps AS recovery_nps,
    ft.recovered AS recovered
FROM contact_events ce
LEFT JOIN survey_decisions sd ON sd.event_id = ce.event_id
LEFT JOIN survey_invitations si ON si.invitation_id = sd.invitation_id
LEFT JOIN survey_reminders rm ON rm.invitation_id = si.invitation_id
LEFT JOIN survey_responses sr ON sr.invitation_id = si.invitation_id
LEFT JOIN survey_answers sa ON sa.response_id = sr.response_id
LEFT JOIN followup_tasks ft
    ON ft.source_id = sr.response_id
    OR (ft.origin = 'complaint' AND ft.source_id = ce.event_id)
LEFT JOIN followup_task_events te ON te.task_id = ft.task_id
LEFT JOIN followup_actions fa ON fa.action_id = te.action_id
LEFT JOIN survey_responses rr ON rr.response_id = ft.recovery_response_id
"""


def lineage_rows(engine: Engine, customer_id: str) -> list[dict[str, Any]]:
    """The lineage of one customer's contacts, in order (through the view)."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(  # the view's name is a constant; the customer is a bound parameter
                f"SELECT * FROM {LINEAGE_VIEW} WHERE customer_id = :customer "  # noqa: S608
                "ORDER BY contact_occurred_at, contact_event_id, decision_id, reminder_number, "
                "answer_question, task_event_seq"
            ),
            {"customer": customer_id},
        ).mappings()
        return [dict(r) for r in rows]
