"""models.store.lineage describes the bi_lineage view the migrations create: a change to its SQL
needs a migration that recreates the view."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import models.store.lineage
import models.store.migrations

VERSIONS = Path(models.store.migrations.__file__).parent / "versions"


def latest_view_sql() -> str:
    found = ""
    for path in sorted(VERSIONS.glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"cxloop_revision_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        found = getattr(module, "LINEAGE_SQL", found)
    return found


def test_the_latest_migration_creates_the_view_models_lineage_describes() -> None:
    assert latest_view_sql() == models.store.lineage.LINEAGE_SQL, (
        "models/store/lineage.py changed: add a migration that drops and recreates bi_lineage "
        "with the new SQL (frozen in the migration, as in 0002_bi_sink)"
    )
