# ruff: noqa: E501 - generated column meanings and frozen SQL
"""BI sink: aggregates, answers as rows, the lineage view, reporting indexes and checks.

- agg_scores / agg_invitations (NPS, CSAT, CES and response-rate counts per period and
  dimensions), bi_settings (the reporting time zone), survey_answers (each answered
  question as a row), contact_events.inquiry_type/team, followup_task_events.action_id;
- indexes for the common BI queries (by time, by case) and CHECK constraints on statuses;
- the view bi_lineage (contact → … → recovery response; its SQL is frozen here, and
  models.store.lineage must match it);
- backfill of the new rows from what an older cxloop stored: answers from the responses'
  JSON, action ids from the task events' details, and the aggregates counted from the
  scored answers and issued surveys (in UTC; `cxloop report rebuild --timezone` moves them).

Revision ID: 0002_bi_sink
Revises: 0001_baseline
Create Date: 2026-11-23 06:06:11.596924
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlmodel import Session

revision: str = "0002_bi_sink"
down_revision: str | None = "0001_baseline"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    _upgrade_tables()
    _upgrade_comments()
    _upgrade_checks()
    _backfill()
    op.execute(f"CREATE VIEW {LINEAGE_VIEW} AS {LINEAGE_SQL}")


def downgrade() -> None:
    op.execute(f"DROP VIEW IF EXISTS {LINEAGE_VIEW}")
    _downgrade_checks()
    _downgrade_comments()
    _downgrade_tables()


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

CHECKS = {
    "survey_invitations": [
        ("ck_invitation_channel", "survey_channel IN ('email', 'phone')"),
    ],
    "followup_task_events": [
        (
            "ck_task_event_status",
            "to_status IN ('open', 'assigned', 'contacted', 'customer_informed', 'closed', "
            "'unreachable', 'cancelled')",
        ),
        ("ck_task_event_seq", "seq >= 1"),
    ],
    "structural_fixes": [("ck_fix_status", "status IN ('open', 'done')")],
    "staff_notifications": [
        ("ck_staff_notification_status", "status IN ('pending', 'sent', 'failed')")
    ],
    "webhook_deliveries": [
        ("ck_webhook_delivery_status", "status IN ('pending', 'delivered', 'failed')")
    ],
}


def _upgrade_checks() -> None:
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, condition in checks:
                batch_op.create_check_constraint(name, condition)


def _downgrade_checks() -> None:
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, _ in checks:
                batch_op.drop_constraint(name, type_="check")


def _answer_rows(response_id: str, answers: dict[str, Any]) -> list[dict[str, Any]]:
    """survey_answers rows of one response, as models.store.surveys.answer_rows makes them."""
    rows: list[dict[str, Any]] = []

    def add(question: str, value: Any) -> None:
        if isinstance(value, dict):
            for sub, inner in value.items():
                add(f"{question}.{sub}", inner)
            return
        number = text = None
        if isinstance(value, bool):
            number, text = float(value), "yes" if value else "no"
        elif isinstance(value, int | float):
            number = float(value)
        elif value is not None:
            text = str(value)[:4000]
        rows.append(
            {"response_id": response_id, "question": question[:100], "n": number, "t": text}
        )

    for question, value in answers.items():
        add(question, value)
    return rows


def _backfill() -> None:
    bind = op.get_bind()
    responses = sa.table(
        "survey_responses", sa.column("response_id"), sa.column("answers", sa.JSON)
    )
    for response_id, answers in bind.execute(sa.select(responses)).all():
        rows = _answer_rows(response_id, answers or {})
        if rows:
            bind.execute(
                sa.text(
                    "INSERT INTO survey_answers (response_id, question, value_number, "
                    "value_text) VALUES (:response_id, :question, :n, :t)"
                ),
                rows,
            )
    events = sa.table("followup_task_events", sa.column("event_id"), sa.column("details", sa.JSON))
    updates = [
        {"event_id": event_id, "action_id": str(details["action_id"])[:64]}
        for event_id, details in bind.execute(sa.select(events)).all()
        if isinstance(details, dict) and details.get("action_id")
    ]
    if updates:
        bind.execute(
            sa.text(
                "UPDATE followup_task_events SET action_id = :action_id WHERE event_id = :event_id"
            ),
            updates,
        )
    # The aggregates are counted by the code that keeps them up to date (in UTC: no
    # reporting time zone is set yet).
    from models.store.aggregates import add_answers, add_invitations  # noqa: PLC0415

    stamp = datetime.now(UTC)
    invitations = list(
        bind.execute(sa.text("SELECT invitation_id FROM survey_invitations")).scalars()
    )
    scored = list(
        bind.execute(
            sa.text("SELECT response_id FROM survey_responses WHERE scored_at IS NOT NULL")
        ).scalars()
    )
    # A savepoint the session releases on commit, inside the migration's transaction.
    with Session(bind=bind, join_transaction_mode="create_savepoint") as session:
        add_invitations(session, invitations, stamp)
        add_answers(session, scored, stamp)
        session.commit()


def _upgrade_tables() -> None:
    op.create_table(
        "agg_invitations",
        sa.Column(
            "aggregate_id", sa.Integer(), nullable=False, comment="row id (generated; no meaning)"
        ),
        sa.Column("grain", sa.String(length=5), nullable=False, comment="day, week or month"),
        sa.Column(
            "period_start",
            sa.Date(),
            nullable=False,
            comment="first day of the period (reporting time zone)",
        ),
        sa.Column("programme", sa.String(length=100), nullable=False, comment="survey programme"),
        sa.Column("partner", sa.String(length=200), nullable=False, comment="business partner"),
        sa.Column(
            "channel", sa.String(length=20), nullable=False, comment="channel of the contact"
        ),
        sa.Column(
            "touchpoint",
            sa.String(length=40),
            nullable=False,
            comment="inquiry type of the contact, else its kind",
        ),
        sa.Column(
            "product", sa.String(length=200), nullable=False, comment="product of the contact"
        ),
        sa.Column(
            "team", sa.String(length=40), nullable=False, comment="team that handled the contact"
        ),
        sa.Column(
            "invited", sa.Integer(), nullable=False, comment="surveys issued (e-mail or phone)"
        ),
        sa.Column("responded", sa.Integer(), nullable=False, comment="of those, answered"),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="when an invitation or answer last changed this row",
        ),
        sa.CheckConstraint("grain IN ('day', 'week', 'month')", name="ck_agg_invitations_grain"),
        sa.CheckConstraint("invited >= 0 AND responded >= 0", name="ck_agg_invitations_n"),
        sa.PrimaryKeyConstraint("aggregate_id"),
        sa.UniqueConstraint(
            "grain",
            "period_start",
            "programme",
            "partner",
            "channel",
            "touchpoint",
            "product",
            "team",
            name="uq_agg_invitations_key",
        ),
    )
    with op.batch_alter_table("agg_invitations", schema=None) as batch_op:
        batch_op.create_index("ix_agg_invitations_period", ["grain", "period_start"], unique=False)
    op.create_table(
        "agg_scores",
        sa.Column(
            "aggregate_id", sa.Integer(), nullable=False, comment="row id (generated; no meaning)"
        ),
        sa.Column("grain", sa.String(length=5), nullable=False, comment="day, week or month"),
        sa.Column(
            "period_start",
            sa.Date(),
            nullable=False,
            comment="first day of the period (reporting time zone)",
        ),
        sa.Column("programme", sa.String(length=100), nullable=False, comment="survey programme"),
        sa.Column("partner", sa.String(length=200), nullable=False, comment="business partner"),
        sa.Column(
            "channel", sa.String(length=20), nullable=False, comment="channel of the contact"
        ),
        sa.Column(
            "touchpoint",
            sa.String(length=40),
            nullable=False,
            comment="inquiry type of the contact, else its kind",
        ),
        sa.Column(
            "product", sa.String(length=200), nullable=False, comment="product of the contact"
        ),
        sa.Column(
            "team", sa.String(length=40), nullable=False, comment="team that handled the contact"
        ),
        sa.Column(
            "responses", sa.Integer(), nullable=False, comment="answers scored in the period"
        ),
        sa.Column("nps_n", sa.Integer(), nullable=False, comment="answers with an NPS score"),
        sa.Column("nps_promoters", sa.Integer(), nullable=False, comment="NPS 9-10"),
        sa.Column("nps_passives", sa.Integer(), nullable=False, comment="NPS 7-8"),
        sa.Column("nps_detractors", sa.Integer(), nullable=False, comment="NPS 0-6"),
        sa.Column("nps_0", sa.Integer(), nullable=False, comment="answers with NPS 0"),
        sa.Column("nps_1", sa.Integer(), nullable=False, comment="answers with NPS 1"),
        sa.Column("nps_2", sa.Integer(), nullable=False, comment="answers with NPS 2"),
        sa.Column("nps_3", sa.Integer(), nullable=False, comment="answers with NPS 3"),
        sa.Column("nps_4", sa.Integer(), nullable=False, comment="answers with NPS 4"),
        sa.Column("nps_5", sa.Integer(), nullable=False, comment="answers with NPS 5"),
        sa.Column("nps_6", sa.Integer(), nullable=False, comment="answers with NPS 6"),
        sa.Column("nps_7", sa.Integer(), nullable=False, comment="answers with NPS 7"),
        sa.Column("nps_8", sa.Integer(), nullable=False, comment="answers with NPS 8"),
        sa.Column("nps_9", sa.Integer(), nullable=False, comment="answers with NPS 9"),
        sa.Column("nps_10", sa.Integer(), nullable=False, comment="answers with NPS 10"),
        sa.Column(
            "csat_n", sa.Integer(), nullable=False, comment="answers with a CSAT score (1-5)"
        ),
        sa.Column("csat_top2", sa.Integer(), nullable=False, comment="CSAT 4 or 5 (top-2 box)"),
        sa.Column("ces_n", sa.Integer(), nullable=False, comment="answers with a CES score (1-7)"),
        sa.Column(
            "ces_sum",
            sa.Integer(),
            nullable=False,
            comment="sum of CES scores (mean = ces_sum / ces_n)",
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="when an answer last changed this row",
        ),
        sa.CheckConstraint("grain IN ('day', 'week', 'month')", name="ck_agg_scores_grain"),
        sa.CheckConstraint("csat_top2 BETWEEN 0 AND csat_n", name="ck_agg_scores_csat"),
        sa.CheckConstraint(
            "nps_n = nps_promoters + nps_passives + nps_detractors", name="ck_agg_scores_nps"
        ),
        sa.CheckConstraint("nps_n >= 0 AND csat_n >= 0 AND ces_n >= 0", name="ck_agg_scores_n"),
        sa.PrimaryKeyConstraint("aggregate_id"),
        sa.UniqueConstraint(
            "grain",
            "period_start",
            "programme",
            "partner",
            "channel",
            "touchpoint",
            "product",
            "team",
            name="uq_agg_scores_key",
        ),
    )
    with op.batch_alter_table("agg_scores", schema=None) as batch_op:
        batch_op.create_index("ix_agg_scores_period", ["grain", "period_start"], unique=False)
    op.create_table(
        "bi_settings",
        sa.Column(
            "key",
            sa.String(length=40),
            nullable=False,
            comment="setting name: report_timezone (time zone the aggregates' periods use)",
        ),
        sa.Column(
            "value",
            sa.String(length=200),
            nullable=False,
            comment="setting value, e.g. an IANA time zone name",
        ),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "survey_answers",
        sa.Column(
            "response_id",
            sa.String(length=64),
            nullable=False,
            comment="answer it belongs to (survey_responses.response_id)",
        ),
        sa.Column(
            "question",
            sa.String(length=100),
            nullable=False,
            comment="question id of the survey template; aspects.<aspect> for an aspect score",
        ),
        sa.Column(
            "value_number",
            sa.Float(),
            nullable=True,
            comment="numeric answer (a score; yes/no as 1/0); null for open text",
        ),
        sa.Column(
            "value_text",
            sa.String(length=4000),
            nullable=True,
            comment="text answer: yes or no, or open text (personal data); null for scores",
        ),
        sa.ForeignKeyConstraint(["response_id"], ["survey_responses.response_id"]),
        sa.PrimaryKeyConstraint("response_id", "question"),
    )
    with op.batch_alter_table("survey_answers", schema=None) as batch_op:
        batch_op.create_index("ix_survey_answers_question", ["question"], unique=False)
    with op.batch_alter_table("contact_events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "inquiry_type",
                sa.String(length=40),
                nullable=True,
                comment="inquiry type (e.g. billing, fault, order), for reporting; null if not given",
            )
        )
        batch_op.add_column(
            sa.Column(
                "team",
                sa.String(length=40),
                nullable=True,
                comment="team that handled the contact; null if not given",
            )
        )
        batch_op.create_index("ix_contact_events_case", ["case_id", "occurred_at"], unique=False)
        batch_op.create_index("ix_contact_events_occurred", ["occurred_at"], unique=False)
    with op.batch_alter_table("followup_task_events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "action_id",
                sa.String(length=64),
                nullable=True,
                comment="staff action behind it (followup_actions.action_id); null if none",
            )
        )
        batch_op.create_index(
            batch_op.f("ix_followup_task_events_action_id"), ["action_id"], unique=False
        )
    with op.batch_alter_table("followup_tasks", schema=None) as batch_op:
        batch_op.create_index("ix_followup_tasks_opened", ["opened_at"], unique=False)
    with op.batch_alter_table("survey_invitations", schema=None) as batch_op:
        batch_op.create_index("ix_survey_invitations_created", ["created_at"], unique=False)
    with op.batch_alter_table("survey_responses", schema=None) as batch_op:
        batch_op.create_index("ix_survey_responses_submitted", ["submitted_at"], unique=False)


def _downgrade_tables() -> None:
    with op.batch_alter_table("survey_responses", schema=None) as batch_op:
        batch_op.drop_index("ix_survey_responses_submitted")
    with op.batch_alter_table("survey_invitations", schema=None) as batch_op:
        batch_op.drop_index("ix_survey_invitations_created")
    with op.batch_alter_table("followup_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_followup_tasks_opened")
    with op.batch_alter_table("followup_task_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_followup_task_events_action_id"))
        batch_op.drop_column("action_id")
    with op.batch_alter_table("contact_events", schema=None) as batch_op:
        batch_op.drop_index("ix_contact_events_occurred")
        batch_op.drop_index("ix_contact_events_case")
        batch_op.drop_column("team")
        batch_op.drop_column("inquiry_type")
    with op.batch_alter_table("survey_answers", schema=None) as batch_op:
        batch_op.drop_index("ix_survey_answers_question")
    op.drop_table("survey_answers")
    op.drop_table("bi_settings")
    with op.batch_alter_table("agg_scores", schema=None) as batch_op:
        batch_op.drop_index("ix_agg_scores_period")
    op.drop_table("agg_scores")
    with op.batch_alter_table("agg_invitations", schema=None) as batch_op:
        batch_op.drop_index("ix_agg_invitations_period")
    op.drop_table("agg_invitations")


def _upgrade_comments() -> None:
    """Column meanings for the tables that existed before (PostgreSQL only: SQLite has no
    column comments). New tables got theirs with create_table."""
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, columns in COMMENTS.items():
        for column, comment in columns.items():
            op.alter_column(table, column, comment=comment)


def _downgrade_comments() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, columns in COMMENTS.items():
        for column in columns:
            op.alter_column(table, column, comment=None)


COMMENTS: dict[str, dict[str, str]] = {
    "contact_events": {
        "event_id": "contact event id from the source system",
        "occurred_at": "when the contact happened",
        "kind": "contact kind, e.g. purchase, inquiry, support_contact, complaint, cancellation",
        "channel": "channel of the contact: phone | email | chat | shop | web | social",
        "customer_id": "customer's id in the source systems (pseudonymous personal data)",
        "locale": "customer's language as sent (e.g. nl); null if not given",
        "partner": "business partner the contact concerns; null if none",
        "product": "product the contact concerns; null if none",
        "case_id": "case id in the source system: contacts about one issue share it; null if none",
        "region": "customer's region (customer.region), for task routing; null if not given",
        "received_at": "when cxloop recorded the contact",
    },
    "customer_consent": {
        "customer_id": "customer's id in the source systems (pseudonymous personal data)",
        "channel": "survey channel covered: email | phone | all",
        "status": "opted_out | opted_in",
        "changed_at": "when the customer made the change",
        "source": "where it came from, e.g. unsubscribe_link, preference_centre, api, import",
        "consent_id": "id of the consent change in force",
        "recorded_at": "when cxloop stored the change",
    },
    "customer_contact_state": {
        "customer_id": "customer's id in the source systems (pseudonymous personal data)",
        "last_surveyed_at": "when any programme last surveyed the customer (global cap); null = never",
    },
    "customer_programme_state": {
        "customer_id": "customer's id in the source systems (pseudonymous personal data)",
        "programme": "survey programme (name in the survey rules file)",
        "last_surveyed_at": "when this programme last surveyed the customer (cooldown)",
    },
    "dead_letters": {
        "dead_letter_id": "dead letter id (UUID derived from topic, partition and offset)",
        "source_topic": "Kafka topic the message was read from",
        "partition": "partition of source_topic",
        "offset": "offset of the message in that partition",
        "reason": "why it could not be processed",
        "original": "the message's original bytes (may hold personal data)",
        "key": "the message's key bytes (often a customer id); null if none",
        "received_at": "when it was dead-lettered",
    },
    "followup_actions": {
        "action_id": "action id (UUID; from Idempotency-Key if given)",
        "task_id": "task acted on (followup_tasks.task_id)",
        "type": "assign | call_attempt | no_answer | resolved | customer_informed | close | cancel | note | refused",
        "note": "personal data: the staff member's note (free text); '' if none",
        "actor": "who: staff_users.username (personal data), or api for an integration",
        "details": "the action's details (JSON): assignee (personal data), root_cause, etc.",
        "recorded_at": "when the action was applied",
    },
    "followup_task_events": {
        "event_id": "event id (UUID derived from task and seq)",
        "task_id": "task changed (followup_tasks.task_id)",
        "seq": "number of the change within its task: 1, 2, 3, ...",
        "event_type": "task_opened, task_assigned, task_action_recorded, task_closed, etc. (README)",
        "from_status": "task status before; null for task_opened",
        "to_status": "status after: open | assigned | contacted | customer_informed | closed | unreachable | cancelled",
        "actor": "who: staff_users.username (personal data), cxloop (system) or api",
        "reason": "why: system text, or the staff note (free text, may hold personal data)",
        "details": "what changed (JSON): action_type, assignee (personal data), SLA step, etc.",
        "occurred_at": "when the change happened",
        "created_at": "when the row was written",
        "payload": "the event as published to followup-tasks and webhooks (JSON, no contact data)",
        "published_at": "when put on the followup-tasks topic; null = not yet",
        "lease_until": "a relay is publishing it until then (technical)",
    },
    "followup_tasks": {
        "task_id": "task id (UUID derived from the answer or complaint that opened it)",
        "origin": "what opened it: detractor (NPS) | unhappy (CSAT/CES) | complaint",
        "source_id": "survey_responses.response_id, or contact_events.event_id for a complaint",
        "customer_id": "customer's id in the source systems (pseudonymous personal data)",
        "priority": "0 high | 1 normal | 2 low",
        "status": "open | assigned | contacted | customer_informed | closed | unreachable | cancelled",
        "team": "team the task is routed to (follow-up rules)",
        "assignee": "working on it: staff user (staff_users.username; personal data); null = unassigned",
        "opened_at": "when the answer was submitted or the complaint happened",
        "first_contact_due_at": "SLA due time of the first contact with the customer",
        "due_at": "SLA due time of the task's closure",
        "sla_due_at": "due time of the SLA measured now (first contact, then closure)",
        "escalation_level": "step reached on the current SLA: 0 none, 1 reminded, 2 lead, 3 manager",
        "next_escalation_at": "when the next escalation step is due; null when none is",
        "failed_attempts": "unanswered calls to the customer",
        "contacted_at": "when staff first reached the customer; null = not yet",
        "informed_at": "when the customer was told what was done; null = not yet",
        "closed_at": "when the task was closed or cancelled; null while active",
        "resolution": "personal data: staff's note of what was done (free text)",
        "told_customer": "personal data: what the customer was told (free text)",
        "root_cause": "root cause given at closure (list in the follow-up rules); null until closed",
        "needs_structural_fix": "whether the cause needs a structural fix; null until closed",
        "structural_fix_id": "structural fix it is linked to (structural_fixes.fix_id); null if none",
        "nps": "NPS 0-10 of the answer that opened it; null if none",
        "csat": "CSAT 1-5 of the answer that opened it; null if none",
        "ces": "CES 1-7 of the answer that opened it; null if none",
        "comment": "personal data: the customer's comment or complaint text (free text)",
        "partner": "business partner the contact concerns; null if none",
        "product": "product the contact concerns; null if none",
        "channel": "channel of the contact (as contact_events.channel)",
        "region": "customer's region (routing); null if not known",
        "language": "customer's language (locale, e.g. nl); null if not known",
        "name": "personal data: the customer's name",
        "email": "personal data: the customer's e-mail address",
        "phone": "personal data: the customer's phone number",
        "timezone": "customer's IANA time zone; null if not known",
        "recovery_response_id": "answer to the recovery survey after closure (survey_responses.response_id)",
        "recovery_nps": "NPS 0-10 of the recovery answer; null if none",
        "recovered": "recovery answer no longer a detractor (NPS 7+, else CSAT 3+); null = none",
        "version": "changes so far: seq of the task's latest followup_task_events row",
    },
    "staff_notifications": {
        "notification_id": "notification id (hash of task event and recipient)",
        "event_id": "task event it is about (followup_task_events.event_id)",
        "to_address": "personal data: the recipient's e-mail address",
        "subject": "e-mail subject",
        "body": "e-mail text: task id, team, assignee (personal data), status, due time",
        "status": "pending | sent | failed",
        "attempts": "send attempts so far",
        "next_attempt_at": "when the next send attempt is due (while pending)",
        "last_error": "last send error; null if none",
        "created_at": "when the e-mail was queued",
        "sent_at": "when it was sent; null = not yet",
    },
    "staff_sessions": {
        "session_hash": "SHA-256 (hex) of the session cookie's random id (secret)",
        "username": "signed-in staff user (staff_users.username; personal data)",
        "csrf_token": "the session's CSRF token (secret)",
        "created_at": "when the user signed in",
        "expires_at": "when the session ends",
    },
    "staff_users": {
        "username": "personal data: sign-in name (lower case)",
        "display_name": "personal data: the name shown in the inbox",
        "email": "personal data: e-mail for SLA reminders and escalations; null if none",
        "role": "staff | lead | admin (admins see every team's tasks)",
        "team": "team (follow-up rules); null for an admin without a team",
        "password_hash": "argon2id hash of the password (secret); null = no password sign-in",
        "api_token_hash": "SHA-256 (hex) of the personal API token (secret); null = none",
        "active": "false once deactivated: cannot sign in",
        "last_assigned_at": "when a task was last assigned to them automatically",
        "created_at": "when the account was created",
    },
    "structural_fixes": {
        "fix_id": "fix id (UUID derived from cause and title)",
        "title": "what is to be fixed (staff-written title)",
        "root_cause": "root cause it fixes (as followup_tasks.root_cause)",
        "status": "open | done",
        "created_by": "created by: staff user (staff_users.username; personal data)",
        "created_at": "when the fix was created",
    },
    "survey_decisions": {
        "decision_id": "decision id (UUID derived from event, programme and repeat)",
        "event_id": "contact decided on (contact_events.event_id)",
        "customer_id": "customer's id in the source systems (pseudonymous personal data)",
        "programme": "survey programme that decided; null when no programme's rule matched",
        "rule": "rule of the programme that matched; null when none matched",
        "rules_version": "survey rules file in force: <version>@<first 12 hex of its SHA-256>",
        "repeat": "0 = the contact's own decision; n = n-th repeat of a repeating rule",
        "outcome": "pending | surveyed | suppressed",
        "reason": "reason code, e.g. scheduled, surveyed, sampled_out, opted_out (see README)",
        "due_at": "when the survey is or was due (moves if deferred); null if never scheduled",
        "invitation_id": "survey sent (survey_invitations.invitation_id); null unless surveyed",
        "decided_at": "when the decision was recorded",
        "resolved_at": "when the outcome became final; null while pending",
    },
    "survey_invitations": {
        "invitation_id": "survey id (UUID derived from the decision)",
        "event_id": "contact surveyed (contact_events.event_id)",
        "customer_id": "customer's id in the source systems (pseudonymous personal data)",
        "email": "personal data: e-mail address surveyed; null for a phone survey",
        "phone": "personal data: phone number to call; null for an e-mail survey",
        "name": "personal data: the customer's name",
        "locale": "survey language (lower case, e.g. nl)",
        "kind": "kind of the contact surveyed (as contact_events.kind)",
        "channel": "channel of the contact surveyed (as contact_events.channel)",
        "partner": "business partner the contact concerns; null if none",
        "product": "product the contact concerns; null if none",
        "programme": "survey programme that issued it",
        "rule": "rule of the programme that matched the contact",
        "template": "survey template: transactional | support | relationship | complaint_handling",
        "survey_channel": "how the survey is taken: email | phone",
        "decision_id": "decision that issued it (survey_decisions.decision_id)",
        "reminders_planned": "reminders to send while unanswered (0-3; 0 for phone surveys)",
        "reminder_gap_s": "seconds from sending to the first reminder, and between reminders",
        "reminders_sent": "reminders created so far",
        "next_reminder_at": "when the next reminder is due; null when none is",
        "created_at": "when the survey was issued",
        "token_hash": "SHA-256 (hex) of the link's token, never the token; null until sent",
        "expires_at": "when the survey link expires (programme expiry after sending)",
        "delivery_status": "pending | sending | sent | failed | unknown (maybe sent) | cancelled; phone: sent = interviewed",
        "delivery_attempts": "e-mail send attempts; phone: calls without an interview",
        "delivery_error": "last error or stop reason; phone: call outcome, interviewer (personal data)",
        "sent_at": "when the e-mail went out; phone: when the interview was taken",
        "answered_at": "when the survey was answered; null = not answered",
    },
    "survey_reminders": {
        "reminder_id": "reminder id (UUID derived from invitation and number)",
        "invitation_id": "survey it reminds of (survey_invitations.invitation_id)",
        "number": "1 for the survey's first reminder, 2 for the second, etc.",
        "created_at": "when the reminder fell due",
        "token_hash": "SHA-256 (hex) of the link's token, never the token; null until sent",
        "delivery_status": "pending | sending | sent | failed | unknown (maybe sent) | cancelled",
        "delivery_attempts": "e-mail send attempts",
        "delivery_error": "last delivery error, or why it was cancelled (answered, expired, opted_out)",
        "sent_at": "when the e-mail went out",
    },
    "survey_responses": {
        "response_id": "answer id (UUID)",
        "invitation_id": "survey answered (survey_invitations.invitation_id)",
        "customer_id": "customer's id in the source systems (pseudonymous personal data)",
        "nps": "NPS score 0-10; null if not answered",
        "csat": "CSAT score 1-5 (5 = very satisfied); null if not answered",
        "ces": "CES score 1-7 (7 = easiest); null if not answered",
        "comment": "personal data: the customer's open comment (free text); null if none",
        "answers": "every answer by question id (JSON); free text in it is personal data",
        "submitted_at": "when the answer was submitted",
        "interviewer": "personal data: interviewer who took a phone survey; null if answered online",
        "published_at": "when put on the survey-responses topic; null = not yet",
        "nps_category": "promoter (9-10) | passive (7-8) | detractor (0-6); null without NPS",
        "csat_satisfied": "true for CSAT 4-5 (top-2 box), false for 1-3; null without CSAT",
        "scored_at": "when scored and counted in agg_scores; null = not yet",
    },
    "survey_timers": {
        "decision_id": "the pending decision (survey_decisions.decision_id)",
        "customer_id": "customer's id in the source systems (pseudonymous personal data)",
        "programme": "survey programme (name in the survey rules file)",
        "rule": "rule of the programme that started the timer",
        "episode": "what a later contact replaces: case:<case_id>, customer or event:<event_id>",
        "event_id": "contact that started it (contact_events.event_id)",
        "repeat": "0 = the contact's own survey; n = n-th repeat of a repeating rule",
        "first_due_at": "when the survey first fell due (expiry counts from it)",
        "due_at": "when the survey is due now (later than first_due_at if deferred)",
        "email": "personal data: the customer's e-mail address",
        "phone": "personal data: the customer's phone number",
        "name": "personal data: the customer's name",
        "locale": "survey language: customer's locale, lower case (en if none)",
        "timezone": "customer's IANA time zone; null = the survey rules' default",
        "kind": "kind of the contact surveyed (as contact_events.kind)",
        "channel": "channel of the contact surveyed (as contact_events.channel)",
        "partner": "business partner the contact concerns; null if none",
        "product": "product the contact concerns; null if none",
    },
    "webhook_deliveries": {
        "delivery_id": "delivery id, sent as the webhook-id header (msg_ + hash)",
        "webhook": "receiving webhook (name in the follow-up rules)",
        "event_id": "task event it is about (followup_task_events.event_id)",
        "payload": "the exact JSON body that is signed and sent (holds customer_id)",
        "status": "pending | delivered | failed",
        "attempts": "delivery attempts so far",
        "next_attempt_at": "when the next attempt is due (while pending)",
        "last_status": "HTTP status of the last attempt; null if no answer came",
        "last_error": "last attempt's error; null if none",
        "created_at": "when the delivery was queued",
        "delivered_at": "when the receiver accepted it (2xx); null = not yet",
    },
}
