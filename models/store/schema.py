"""cxloop's database schema: Alembic migrations to head, the revision check a worker makes
before it starts, and the schema documentation generated from the models.

Revisions live in models/store/migrations/versions/<id>.py with readable ids (0001_baseline,
0002_…). A database made by an older cxloop with create_all has cxloop tables but no
alembic_version; upgrade() stamps it 0001_baseline when its tables are exactly what that
revision creates, and refuses (SchemaMismatchError) when they are not.
"""

from __future__ import annotations

import importlib.util
import inspect as pyinspect
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Connection, Engine, MetaData, Table, inspect, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CheckConstraint, Index, UniqueConstraint
from sqlmodel import SQLModel

from models.store.engine import make_engine
from models.store.errors import StoreError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SCHEMA_DOC = Path(__file__).with_name("SCHEMA.md")
BASELINE = "0001_baseline"
UPGRADE_HINT = "run `cxloop db upgrade` (with the database URL setting CXLOOP_DATABASE_URL)"
# pg_advisory_xact_lock key that serialises cxloop migrations on one PostgreSQL database.
_PG_MIGRATION_LOCK = 0x6378_6C6F_6F70  # "cxloop"


class SchemaError(StoreError):
    """The database's schema is not one this cxloop can work with as it is."""


class SchemaOutdatedError(SchemaError):
    """The database is behind this cxloop's head revision (or has no revision at all)."""

    def __init__(self, current: str | None, expected: str, *, legacy: bool = False) -> None:
        self.current = current
        self.expected = expected
        self.legacy = legacy
        if legacy:
            state = (
                "the database has cxloop tables but no schema revision (it was made by a cxloop "
                f"without migrations); this cxloop expects revision {expected}: {UPGRADE_HINT}, "
                f"which stamps tables that match {BASELINE} and then upgrades them"
            )
        elif current is None:
            state = f"the database has no cxloop schema; this cxloop expects revision {expected}"
        else:
            state = f"the database schema is at revision {current}, this cxloop expects {expected}"
        super().__init__(state if legacy else f"{state}: {UPGRADE_HINT}")


class SchemaUnknownError(SchemaError):
    """The database is at a revision this cxloop does not have (a newer cxloop made it)."""

    def __init__(self, current: str, expected: str) -> None:
        self.current = current
        self.expected = expected
        super().__init__(
            f"the database schema is at revision {current}, which this cxloop does not know "
            f"(it expects {expected}): a newer cxloop has upgraded it; run that version"
        )


class SchemaMismatchError(SchemaError):
    """Tables from an older cxloop that are not exactly the baseline: no safe stamp."""

    def __init__(self, differences: list[str]) -> None:
        self.differences = differences
        super().__init__(
            "the database has cxloop tables but no schema revision, and they differ from "
            f"revision {BASELINE} ({'; '.join(differences[:5])}"
            f"{'; …' if len(differences) > 5 else ''}), so it cannot be stamped: bring its "
            f"tables to {BASELINE} by hand (models/store/migrations/versions/{BASELINE}.py says "
            "what they are), then run `cxloop db upgrade` again"
        )


@dataclass(frozen=True)
class Revision:
    """One migration: its id, the one it follows and what it does."""

    id: str
    down_revision: str | None
    message: str


def migrations_config() -> Config:
    """Alembic's configuration, built in code: the scripts are this package's migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    # versions/<revision id>.py: the id already says what it is (0002_bi_sink).
    config.set_main_option("file_template", "%%(rev)s")
    if importlib.util.find_spec("ruff") is not None:  # a development install
        config.set_section_option("post_write_hooks", "hooks", "ruff_fix, ruff_format")
        for hook, options in (("ruff_fix", "check --fix --quiet"), ("ruff_format", "format")):
            config.set_section_option("post_write_hooks", f"{hook}.type", "module")
            config.set_section_option("post_write_hooks", f"{hook}.module", "ruff")
            config.set_section_option(
                "post_write_hooks", f"{hook}.options", f"{options} REVISION_SCRIPT_FILENAME"
            )
    return config


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(migrations_config())


def head_revision() -> str:
    """The revision this cxloop's models are at."""
    head = _scripts().get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations in {MIGRATIONS_DIR}")
    return head


def revisions() -> list[Revision]:
    """Every migration, oldest first."""
    return [
        Revision(
            id=script.revision,
            down_revision=_single(script.down_revision),
            message=(script.doc or "").strip(),
        )
        for script in reversed(list(_scripts().walk_revisions()))
    ]


def _single(down_revision: str | Sequence[str] | None) -> str | None:
    if down_revision is None or isinstance(down_revision, str):
        return down_revision
    return ", ".join(down_revision)  # a merge revision


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None when it has no alembic_version (yet)."""
    with engine.connect() as connection:
        return _current(connection)


def _current(connection: Connection) -> str | None:
    # alembic_version read directly: a MigrationContext would log two INFO lines per check.
    if not inspect(connection).has_table("alembic_version"):
        return None
    versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
    found = sorted(versions)
    if len(found) > 1:
        raise SchemaError(f"the database is at several revisions at once: {', '.join(found)}")
    return found[0] if found else None


def check_schema(engine: Engine) -> None:
    """Raise SchemaOutdatedError (or SchemaUnknownError) unless the database is at head."""
    expected = head_revision()
    with engine.connect() as connection:
        current = _current(connection)
        legacy = current is None and bool(_cxloop_tables(connection))
    if current == expected:
        return
    if current is not None and current not in {r.id for r in revisions()}:
        raise SchemaUnknownError(current, expected)
    raise SchemaOutdatedError(current, expected, legacy=legacy)


@contextmanager
def _engine_for(engine_or_url: Engine | str) -> Iterator[Engine]:
    if isinstance(engine_or_url, Engine):
        yield engine_or_url
        return
    engine = make_engine(engine_or_url)
    try:
        yield engine
    finally:
        engine.dispose()


def upgrade(engine_or_url: Engine | str, revision: str = "head") -> str | None:
    """Migrate the database to *revision* in one transaction; returns the revision it is
    at afterwards. Tables from a cxloop without migrations are stamped 0001_baseline first
    when they match it exactly (SchemaMismatchError when they do not)."""
    with _engine_for(engine_or_url) as engine, _migrating(engine) as connection:
        current = _current(connection)
        if current is not None and current not in {r.id for r in revisions()}:
            raise SchemaUnknownError(current, head_revision())
        if current is None and _cxloop_tables(connection):
            differences = _baseline_differences(connection)
            if differences:
                raise SchemaMismatchError(differences)
            _alembic(command.stamp, connection, BASELINE)
        _alembic(command.upgrade, connection, revision)
        return _current(connection)


def create_schema(engine: Engine) -> None:
    """Bring the database to cxloop's schema: the migrations up to head, so a fresh
    database, a test's and an upgraded one all have the same tables."""
    upgrade(engine)


def downgrade(engine_or_url: Engine | str, revision: str) -> str | None:
    """Migrate the database down to *revision* ("base" drops every cxloop table)."""
    with _engine_for(engine_or_url) as engine, _migrating(engine) as connection:
        _alembic(command.downgrade, connection, revision)
        return _current(connection)


def new_revision(engine: Engine, message: str, rev_id: str) -> Path:
    """Autogenerate versions/<rev_id>.py: what the models have that head does not.

    *engine* is a scratch database; it is upgraded to head first. Use PostgreSQL: SQLite
    has no column comments, so on SQLite a changed comment goes unnoticed."""
    upgrade(engine)
    with engine.connect() as connection:
        script = _alembic(
            command.revision, connection, message=message, autogenerate=True, rev_id=rev_id
        )
    _scripts.cache_clear()
    if script is None or isinstance(script, list):
        raise RuntimeError("alembic wrote no single revision")
    return Path(script.path)


def _alembic(run: Callable[..., Any], connection: Connection, *args: Any, **kwargs: Any) -> Any:
    """An alembic command on our connection and inside its transaction (env.py reads it)."""
    config = migrations_config()
    config.attributes["connection"] = connection
    return run(config, *args, **kwargs)


@contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    """One transaction for a whole migration, one migration at a time: PostgreSQL takes an
    advisory lock until commit; SQLite's engine (models.store.engine) begins with BEGIN
    IMMEDIATE. On SQLite, foreign keys are off meanwhile and checked before the commit:
    that is how SQLite changes a table (copy, drop, rename; sqlite.org/lang_altertable),
    and dropping a table that other rows reference fails with them on."""
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:  # a PRAGMA that only works outside a transaction: none is open yet
            _outside_transaction(connection, "PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                    )
                yield connection
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        tables = sorted({str(row[0]) for row in broken})
                        raise SchemaError(
                            f"the migration left rows whose foreign keys point nowhere in "
                            f"{', '.join(tables)}; nothing was changed"
                        )
        finally:
            if sqlite:
                _outside_transaction(connection, "PRAGMA foreign_keys=ON")


def _outside_transaction(connection: Connection, sql: str) -> None:
    """*sql* straight on the driver's connection: SQLAlchemy would begin a transaction
    (BEGIN IMMEDIATE, models.store.engine) first."""
    driver = connection.connection.driver_connection
    if driver is None:
        raise RuntimeError("the connection has no driver connection")
    driver.execute(sql)


def _cxloop_tables(connection: Connection) -> set[str]:
    known = set(SQLModel.metadata.tables)
    return known & set(inspect(connection).get_table_names())


def _baseline_differences(connection: Connection) -> list[str]:
    """How the database's cxloop tables differ from what 0001_baseline creates, found by
    running 0001 on a scratch copy of the same dialect and comparing what each reflects:
    an in-memory SQLite, or on PostgreSQL a schema made and rolled back in a savepoint."""
    actual = _fingerprint(connection, None)
    if connection.dialect.name == "sqlite":
        scratch = make_engine("sqlite://")
        try:
            with scratch.begin() as probe:
                _alembic(command.upgrade, probe, BASELINE)
                expected = _fingerprint(probe, None)
        finally:
            scratch.dispose()
    else:
        schema = f"cxloop_baseline_{uuid.uuid4().hex[:12]}"
        savepoint = connection.begin_nested()
        try:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            connection.execute(text(f'SET LOCAL search_path TO "{schema}"'))
            _alembic(command.upgrade, connection, BASELINE)
            connection.execute(text("SET LOCAL search_path TO DEFAULT"))
            expected = _fingerprint(connection, schema)
        finally:
            savepoint.rollback()  # drops the scratch schema and restores search_path
    known = set(expected) | set(SQLModel.metadata.tables)
    differences = []
    for table in sorted(known & (set(expected) | set(actual))):
        if table not in actual:
            differences.append(f"{table}: missing")
        elif table not in expected:
            differences.append(f"{table}: not in {BASELINE}")
        else:
            parts = [
                part for part in expected[table] if expected[table][part] != actual[table][part]
            ]
            if parts:
                differences.append(f"{table}: {', '.join(parts)} differ")
    return differences


def _fingerprint(connection: Connection, schema: str | None) -> dict[str, dict[str, Any]]:
    """Every table's columns, keys, indexes and checks as the database reflects them."""
    inspector = inspect(connection)
    dialect = connection.dialect
    tables: dict[str, dict[str, Any]] = {}
    for name in inspector.get_table_names(schema=schema):
        if name == "alembic_version":
            continue
        pk = inspector.get_pk_constraint(name, schema=schema)
        tables[name] = {
            "columns": sorted(
                (c["name"], c["type"].compile(dialect=dialect), c["nullable"], c.get("default"))
                for c in inspector.get_columns(name, schema=schema)
            ),
            "primary key": (pk.get("name"), tuple(pk["constrained_columns"])),
            "foreign keys": sorted(
                (
                    fk.get("name") or "",
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                )
                for fk in inspector.get_foreign_keys(name, schema=schema)
            ),
            "unique constraints": sorted(
                (u.get("name") or "", tuple(u["column_names"]))
                for u in inspector.get_unique_constraints(name, schema=schema)
            ),
            "indexes": sorted(
                (i.get("name") or "", tuple(str(c) for c in i["column_names"]), i["unique"])
                for i in inspector.get_indexes(name, schema=schema)
            ),
            "checks": sorted(
                (c.get("name") or "", " ".join(c["sqltext"].split()))
                for c in inspector.get_check_constraints(name, schema=schema)
            ),
        }
    return tables


# --- schema documentation -------------------------------------------------------------

_DOC_HEADER = """\
# cxloop database schema

Generated from the models (models/store/tables.py) by `cxloop db docs`; do not edit by hand.
Types are PostgreSQL's (production); SQLite stores the same columns with its own affinities
and ignores column comments. Timestamps are UTC with time zone: `timestamptz` on PostgreSQL,
and on SQLite ISO 8601 text in UTC with microseconds and an explicit offset
(`2026-12-04T17:05:00.123456+00:00`). "Meaning" is the column's comment, which PostgreSQL
carries as COMMENT ON COLUMN for BI tools to show (or, failing that, the model field's
description).
"""


def column_meaning(table: Table, column: Column[Any]) -> str | None:
    """What a column means: its comment, else the model field's description."""
    if column.comment:
        return column.comment
    model = _models().get(table.name)
    if model is None:
        return None
    field = model.model_fields.get(column.key)
    return field.description if field is not None else None


def _models() -> dict[str, type[SQLModel]]:
    """Table name → SQLModel class, for every table model defined so far."""
    found: dict[str, type[SQLModel]] = {}
    pending = list(SQLModel.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        table = getattr(cls, "__table__", None)
        if isinstance(table, Table):
            found[table.name] = cls
    return found


def schema_markdown(metadata: MetaData) -> str:
    """The schema as a Markdown page: per table its purpose, its columns (type, null, key,
    meaning), then its checks, unique constraints and indexes."""
    models = _models()
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]  # no annotations in SA
    parts = [_DOC_HEADER]
    parts.append("\n".join(f"- [{name}](#{name})" for name in metadata.tables) + "\n")
    for name, table in metadata.tables.items():
        parts.append(f"## {name}\n")
        model = models.get(name)
        if model is not None and model.__doc__:
            parts.append(pyinspect.cleandoc(model.__doc__) + "\n")
        rows = ["| Column | Type | Null | Key | Meaning |", "| --- | --- | --- | --- | --- |"]
        for column in table.columns:
            cells = [
                f"`{column.name}`",
                column.type.compile(dialect=dialect),
                "yes" if column.nullable else "no",
                _key(table, column),
                column_meaning(table, column) or "",
            ]
            rows.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
        parts.append("\n".join(rows) + "\n")
        rules = _rules(table)
        if rules:
            parts.append("\n".join(rules) + "\n")
    return "\n".join(parts)


def _key(table: Table, column: Column[Any]) -> str:
    keys = []
    if column.primary_key:
        keys.append("PK")
    keys.extend(f"FK → {fk.target_fullname}" for fk in sorted(column.foreign_keys, key=str))
    single_unique = any(
        isinstance(c, UniqueConstraint) and [col.name for col in c.columns] == [column.name]
        for c in table.constraints
    )
    if column.unique or single_unique:
        keys.append("unique")
    return ", ".join(keys)


def _rules(table: Table) -> list[str]:
    lines = []
    checks = [c for c in table.constraints if isinstance(c, CheckConstraint)]
    for check in sorted(checks, key=lambda c: str(c.name)):
        lines.append(f"- check `{check.name}`: `{' '.join(str(check.sqltext).split())}`")
    uniques = [
        c for c in table.constraints if isinstance(c, UniqueConstraint) and len(c.columns) > 1
    ]
    for unique in sorted(uniques, key=lambda c: [col.name for col in c.columns]):
        name = f" `{unique.name}`" if isinstance(unique.name, str) else ""
        lines.append(f"- unique{name} ({', '.join(f'`{c.name}`' for c in unique.columns)})")
    indexes: list[Index] = sorted(table.indexes, key=lambda i: str(i.name))
    for index in indexes:
        columns = ", ".join(f"`{c.name}`" for c in index.columns)
        lines.append(f"- {'unique ' if index.unique else ''}index `{index.name}` ({columns})")
    return lines


def _cell(text_: str) -> str:
    return " ".join(text_.split()).replace("|", "\\|")
