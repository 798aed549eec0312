"""The README's first command works in a fresh clone: `make demo` sets up, serves and feeds."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time

import httpx
import pytest

from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.slow


def test_readme_starts_with_the_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```sh", 1)[1].split("```", 1)[0]
    assert [line.split()[:2] for line in first_block.strip().splitlines()] == [["make", "demo"], ["make", "test"]]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert ci.strip().splitlines()[-1] == "make test", "CI runs the README's test command, nothing hidden after it"


def test_make_demo_in_a_fresh_clone_serves_the_board_with_simulated_feeds(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=60)
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "VIRTUAL_ENV") and not k.startswith("CAPACITY_")}
    port = free_port()
    process = subprocess.Popen(
        ["make", "demo", f"DEMO_ARGS=--port {port} --interval 0.2 --duration 60"],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    try:
        key = _wait_for_board_line(process, output, timeout=600)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}) as http:
            assert "ROAZ-capaciteitsbord" in http.get("/").text
            deadline = time.monotonic() + 30
            while True:
                boards = [http.get(f"/api/v1/regions/{r['id']}/board").json() for r in http.get("/api/v1/regions").json()]
                facilities = [f for b in boards for f in b["facilities"]]
                hospitals = [f for f in facilities if not f["synthetic"]]
                demo = [f for f in facilities if f["synthetic"]]
                reported = [f for f in hospitals if f["last_measured_at"]]
                with_beds = [f for f in demo if f["offers"]]
                if (len(reported) == 89 and all(f["last_measured_at"] for f in with_beds)) or time.monotonic() > deadline:
                    break
                time.sleep(1)
        assert len(hospitals) == 89
        assert len(reported) == 89, "every real hospital gets simulated reports"
        assert demo and all(f["last_measured_at"] for f in with_beds), "the demo's care places, labelled synthetic, report too"
        assert {f["kind"] for f in demo} >= {"care_home", "rehab_centre", "mental_health", "gp_post"}
        assert any(f["stale"] for f in reported), "some facilities go quiet and show as stale"
        assert any(not f["stale"] for f in reported)
        assert (clone / "var" / "redis").is_dir(), "embedded Redis keeps its data under var/"
        assert (clone / "var" / "capacity.db").exists(), "SQLite under var/ when DATABASE_URL is unset"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        if process.stdout:
            process.stdout.close()
    assert not _embedded_servers_under(clone), "stopping the demo stops its embedded Redis"


def _embedded_servers_under(folder) -> list[str]:
    time.sleep(1)
    found = subprocess.run(["pgrep", "-f", f"{folder}/.venv/.*redis-server"], capture_output=True, text=True)
    return found.stdout.split()


def _wait_for_board_line(process: subprocess.Popen, output: list[str], *, timeout: float) -> str:
    """Read the demo's output in a thread (a select() on a buffered pipe would miss buffered lines)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            break
        output.append(line)
        if match := re.search(r"Board: (http://\S+)/#key=(cap_\S+)", line):
            return match.group(2)
    raise AssertionError("make demo never printed the board URL:\n" + "".join(output[-40:]))
