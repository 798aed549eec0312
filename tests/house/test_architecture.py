"""The data path reads one way: the adapters in `feeds/` and the reference data in `regions/` sit
below the core and import from it only its domain types; the core imports them, never the other
way round; no module imports itself back through others; and every module is small enough to read."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FEEDS = ROOT / "feeds"
PACKAGES = ("capacity", "regions", "feeds")
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


def test_regions_import_from_the_core_only_its_domain_types() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted((ROOT / "regions").rglob("*.py"))
        for line, module in _imported(path)
        if (module == "capacity" or module.startswith("capacity.")) and module != "capacity.domain"
    ]
    assert wrong == [], "regions/ may import only capacity.domain:\n" + "\n".join(wrong)


def test_every_module_is_small_enough_to_read() -> None:
    long = [
        f"{path.relative_to(ROOT)}: {n} lines"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts and (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    ]
    assert long == []


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Which project module imports which (a name imported from a package counts as its module
    when it is one, else as the package)."""

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, *([base] if base else [])])
                targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            for target in targets:
                if (module := known(target)) and module != name:
                    graph[name].add(module)
                    break
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while (top := stack.pop()) != node:
                on_stack.discard(top)
                group.append(top)
            on_stack.discard(node)
            if group:
                found.append(sorted([node, *group]))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_back_through_others() -> None:
    assert circles(import_graph(_modules())) == []


def test_the_circle_finder_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]
