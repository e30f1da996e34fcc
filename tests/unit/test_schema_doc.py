"""The schema docs: models/store/SCHEMA.md is exactly what the models generate (so it never
drifts), and every column of the tables the BI team reads says what it means."""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlmodel import SQLModel

from models.store import tables  # noqa: F401 - registers the tables on SQLModel.metadata
from models.store.schema import SCHEMA_DOC, column_meaning, schema_markdown

# The tables the BI team reads (the aggregates, the answers, and everything the bi_lineage
# view joins): each of their columns must have a meaning, a column comment or the model
# field's description. A new BI-facing table belongs here.
DOCUMENTED_TABLES = (
    "agg_scores",
    "agg_invitations",
    "bi_settings",
    "survey_answers",
    "contact_events",
    "survey_decisions",
    "survey_invitations",
    "survey_reminders",
    "survey_responses",
    "followup_tasks",
    "followup_task_events",
    "followup_actions",
    "structural_fixes",
)


def test_the_committed_schema_doc_is_what_the_models_generate() -> None:
    expected = schema_markdown(SQLModel.metadata)
    committed = SCHEMA_DOC.read_text() if SCHEMA_DOC.exists() else ""
    assert committed == expected, (
        "models/store/SCHEMA.md does not match the models: regenerate it with `cxloop db docs`"
    )


def test_the_documented_tables_exist() -> None:
    assert [name for name in DOCUMENTED_TABLES if name not in SQLModel.metadata.tables] == []


def test_every_column_of_the_bi_tables_has_a_meaning() -> None:
    missing = [
        f"{name}.{column.name}"
        for name in DOCUMENTED_TABLES
        if name in SQLModel.metadata.tables
        for column in SQLModel.metadata.tables[name].columns
        if not column_meaning(SQLModel.metadata.tables[name], column)
    ]
    assert missing == [], (
        "give these columns a meaning (Field(description=...), which becomes the column "
        f"comment), then run `cxloop db docs`: {', '.join(missing)}"
    )


def test_every_table_says_what_it_is_for() -> None:
    text = schema_markdown(SQLModel.metadata)
    for name in SQLModel.metadata.tables:
        section = text.split(f"\n## {name}\n", 1)[1]
        assert not section.lstrip().startswith("|"), f"{name} has no docstring"


def test_a_table_shows_types_keys_meanings_checks_and_indexes() -> None:
    metadata = MetaData()
    Table("parents", metadata, Column("id", String(10), primary_key=True))
    Table(
        "children",
        metadata,
        Column("id", Integer, primary_key=True, comment="row id"),
        Column("parent_id", String(10), ForeignKey("parents.id"), nullable=False),
        Column("code", String(5), unique=True, comment="a | b"),
        Column("seen_at", DateTime(timezone=True)),
        CheckConstraint("id > 0", name="ck_children_id"),
        UniqueConstraint("parent_id", "seen_at", name="uq_children_seen"),
        Index("ix_children_seen", "seen_at"),
    )

    text = schema_markdown(metadata)

    children = text.split("\n## children\n", 1)[1]
    assert children.splitlines()[1:8] == [
        "| Column | Type | Null | Key | Meaning |",
        "| --- | --- | --- | --- | --- |",
        "| `id` | INTEGER | no | PK | row id |",
        "| `parent_id` | VARCHAR(10) | no | FK → parents.id |  |",
        "| `code` | VARCHAR(5) | yes | unique | a \\| b |",
        "| `seen_at` | TIMESTAMP WITH TIME ZONE | yes |  |  |",
        "",
    ]
    assert children.splitlines()[8:11] == [
        "- check `ck_children_id`: `id > 0`",
        "- unique `uq_children_seen` (`parent_id`, `seen_at`)",
        "- index `ix_children_seen` (`seen_at`)",
    ]
    assert "- [children](#children)" in text
