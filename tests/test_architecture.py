"""The data path reads one way: the adapters in `feeds/` sit below the core and import from it only
its domain types; the core imports the adapters, never the other way round."""

from __future__ import annotations

import ast
from pathlib import Path

FEEDS = Path(__file__).resolve().parents[1] / "feeds"
ALLOWED = frozenset({"capacity.domain", "capacity.reports.models"})
MAX_LINES = 400


def _imported(path: Path) -> list[tuple[int, str]]:
    """Every absolute module a file imports (`from capacity import x` counts as `capacity.x`)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "capacity":
                found += [(node.lineno, f"capacity.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def test_feeds_import_from_the_core_only_its_domain_types() -> None:
    wrong = [
        f"{path.relative_to(FEEDS.parent)}:{line} imports {module}"
        for path in sorted(FEEDS.rglob("*.py"))
        for line, module in _imported(path)
        if (module == "capacity" or module.startswith("capacity.")) and module not in ALLOWED
    ]
    assert wrong == [], "feeds/ may import only capacity.domain and capacity.reports.models:\n" + "\n".join(wrong)


def test_the_checker_sees_every_form_of_import(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "import capacity.board.models\nfrom capacity import errors\nfrom capacity.domain import UnitType\n"
        "def f():\n    from capacity.interop.service import Parsed\n",
        encoding="utf-8",
    )
    modules = [m for _, m in _imported(source)]
    assert modules == ["capacity.board.models", "capacity.errors", "capacity.domain", "capacity.interop.service"]


def test_the_document_adapters_are_small_modules() -> None:
    long = [
        f"{path.relative_to(FEEDS.parent)}: {n} lines"
        for package in ("edxl_have", "fhir_saner")
        for path in sorted((FEEDS / package).glob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    ]
    assert long == []
