"""The layers in docs/ARCHITECTURE.md hold (the import contracts in pyproject.toml), and a
forbidden import, even one hidden inside a function, breaks them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the product code and its contracts, to break on purpose."""
    for package in ("streams", "agents", "models"):
        shutil.copytree(ROOT / package, tmp_path / package)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_contracts_are_kept(tree: Path) -> None:
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 5 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # A pure rule reaching for SQL, inside a function where a reader would miss it.
        (
            "models/scoring.py",
            "def _sneak() -> None:\n    import sqlalchemy  # noqa: F401\n",
            "models.scoring is not allowed to import sqlalchemy",
        ),
        ("models/scoring.py", "import models.store.tables\n", "models.store"),
        ("models/store/lineage.py", "import agents.web.inbox\n", "agents"),
        ("streams/topics.py", "import agents.runtime\n", "streams is not allowed"),
        ("agents/pipeline/trigger.py", "import agents.web.inbox\n", "agents.pipeline"),
        # A cycle between two pure modules.
        ("models/scoring.py", "import models.stats\n", None),
    ],
)
def test_a_forbidden_import_breaks_them(
    tree: Path, module: str, line: str, broken: str | None
) -> None:
    if broken is None:  # make models.stats import models.scoring back: a cycle
        with (tree / "models/stats.py").open("a") as f:
            f.write("import models.scoring\n")
        broken = "No cycles are allowed in models"
    with (tree / module).open("a") as f:
        f.write("\n" + line)
    result = lint_imports(tree)
    assert result.returncode != 0
    assert broken in result.stdout, result.stdout
