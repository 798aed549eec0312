"""Routes name the worker's parts they need (capacity.deps) instead of reaching into the untyped
`app.state`: only the modules that keep the parts there may touch it."""

from __future__ import annotations

import ast
from pathlib import Path

CAPACITY = Path(__file__).resolve().parents[1] / "capacity"
ALLOWED = {"deps.py", "app.py", "worker.py"}
"""Relative to capacity/; and capacity/interop/*, until it uses capacity.deps."""


def app_state_uses(source: str) -> list[int]:
    """The lines where `<something>.app.state` is read or written."""
    return sorted(
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute)
        and node.attr == "state"
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "app"
    )


def allowed(path: Path) -> bool:
    relative = path.relative_to(CAPACITY)
    return str(relative) in ALLOWED or relative.parts[0] == "interop"


def test_only_deps_app_and_worker_touch_app_state():
    found = {
        str(path.relative_to(CAPACITY)): lines
        for path in sorted(CAPACITY.rglob("*.py"))
        if not allowed(path) and (lines := app_state_uses(path.read_text(encoding="utf-8")))
    }
    assert not found, f"modules reaching into app.state (use capacity.deps instead): {found}"


def test_the_check_finds_a_route_reaching_into_app_state():
    route = "async def board(request):\n    return request.app.state.replica\n\nasync def socket(websocket):\n    websocket.app.state.x = 1\n"
    assert app_state_uses(route) == [2, 5]
    assert app_state_uses("def fine(services):\n    return services.replica, state.app\n") == []
