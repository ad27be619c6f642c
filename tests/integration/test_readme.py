"""Issue 12 §3: every command block in README.md is run by a test, as written, against a live
``serve`` started with the README's own command (a fresh state directory, sandbox mode).

Only what a test machine cannot do as written is changed: ``.venv/bin/`` is this environment's
bin directory, ``localhost:8080`` the port this ``serve`` got, ``$TOKEN`` its token. Commands no
test here runs are listed in :data:`NOT_RUN` with the reason and where they run instead, and
:func:`test_every_readme_command_is_run_by_a_test_or_says_why_not` fails on a command that is in
neither place, so a new README command needs a test.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from inventory_engine.config import load_settings
from tests.integration.conftest import free_port, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
BIN = Path(sys.executable).parent
TOKEN = "readme-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

NOT_RUN = {
    'python3 -m venv .venv && .venv/bin/pip install -q -e ".[test]" && .venv/bin/pytest': (
        ".ci/run runs it verbatim (checked below); this test is part of what it runs"
    ),
    '.venv/bin/pip install -e ".[dev]"': "installs packages: this environment is what it makes",
    ".venv/bin/pytest": "the suite this test is part of",
    '.venv/bin/pytest -m "not integration"': "the unit part of the suite this test is part of",
    ".venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy": (
        ".ci/run runs it verbatim (checked below)"
    ),
    ".venv/bin/lint-imports": ".ci/run runs it (checked below), and so does a unit test",
    '.venv/bin/pip install -e ".[bench]"': "installs packages (matplotlib, psycopg) from PyPI",
    ".venv/bin/python -m benchmarks --quick": (
        "installs PostgreSQL with apt and runs for minutes; benchmarks are measured, not tested "
        "(benchmarks/RESULTS.md)"
    ),
}
RUN_BY_CI = [command for command, why in NOT_RUN.items() if why.startswith(".ci/run")]


# -- the README's blocks ------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    language: str
    body: str
    heading: str


def blocks() -> list[Block]:
    """Fenced blocks with their language and the ``##``/``###`` heading above them."""
    found, heading = [], ""
    for match in re.finditer(r"^(#{2,3} [^\n]+)$|^```(\w+)\n(.*?)^```$", README, re.M | re.S):
        if match[1]:
            heading = match[1].lstrip("# ").strip()
        else:
            found.append(Block(match[2], match[3], heading))
    return found


def commands(block: Block) -> list[str]:
    """The block's commands: continuation lines joined, comments dropped."""
    joined = block.body.replace("\\\n", " ")
    lines = [shlex.split(line, comments=True) for line in joined.splitlines()]
    return [_plain(words) for words in lines if words]


def _plain(words: list[str]) -> str:
    """A command as one normalised line (for comparison with :data:`NOT_RUN`)."""
    return " ".join(w if re.fullmatch(r"[\w./:=@%+,-]+|&&", w) else f'"{w}"' for w in words)


def sh_commands(heading: str) -> list[str]:
    """Every command of the ``sh`` blocks under ``heading``."""
    found = [
        c for b in blocks() if b.language == "sh" and b.heading == heading for c in commands(b)
    ]
    assert found, f"README has no sh block under {heading!r}"
    return found


def sh_block(heading: str, index: int = 0) -> str:
    """The text of one ``sh`` block under ``heading``, as written."""
    return [b.body for b in blocks() if b.language == "sh" and b.heading == heading][index]


HANDLERS: dict[str, Callable[[str], bool]] = {
    "serve": lambda c: c.endswith(".venv/bin/inventory-engine serve"),
    "demo": lambda c: c.startswith(".venv/bin/inventory-engine demo"),
    "curl": lambda c: c.startswith("curl "),
    "stock": lambda c: c.startswith(("inventory-engine stock ", "inventory-engine catalog ")),
    "operate": lambda c: (
        c.split()[:2][-1] in {"reconcile", "retry", "explain", "order", "orders", "oversold"}
    ),
    "simulate": lambda c: c.startswith("inventory-engine simulate"),
}


def test_every_readme_command_is_run_by_a_test_or_says_why_not() -> None:
    every = [c for b in blocks() if b.language == "sh" for c in commands(b)]
    assert len(every) > 20
    for command in every:
        handled = [name for name, matches in HANDLERS.items() if matches(command)]
        if command in NOT_RUN:
            assert not handled, command
        else:
            assert len(handled) == 1, f"no test runs this README command: {command}"
    stale = set(NOT_RUN) - set(every)
    assert not stale, f"NOT_RUN names commands the README no longer has: {stale}"
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    for command in RUN_BY_CI:
        for part in command.split(" && "):
            assert part in ci, f".ci/run does not run the README's {command!r}"
    languages = {b.language for b in blocks()}
    assert languages <= {"sh", "csv", "toml"}, languages  # each kind is checked below


# -- a live serve, started as the README says -------------------------------------------------


@dataclass
class Shell:
    """Runs README commands in a scratch directory, against the ``serve`` it started."""

    cwd: Path
    env: dict[str, str]
    port: int
    sandbox: dict[str, str]

    def run(self, script: str, *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        script = script.replace(".venv/bin/", f"{BIN}/").replace(
            "localhost:8080", f"127.0.0.1:{self.port}"
        )
        return subprocess.run(
            ["bash", "-eo", "pipefail", "-c", script],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory, real_server: object) -> Iterator[Shell]:
    """The quick start's ``serve``, run as written after its install steps (they made this
    environment), with its own state directory and port."""
    quick_start = sh_commands("Quick start")
    serve_command = next(c for c in quick_start if HANDLERS["serve"](c))
    run = serve_command.split("&&")[-1].strip()
    assert run == ".venv/bin/inventory-engine serve", serve_command
    cwd = tmp_path_factory.mktemp("readme")
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("INVENTORY_", "XDG_"))
    }
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        HOME=str(cwd),
        XDG_STATE_HOME=str(cwd / "state"),
        INVENTORY_HTTP__PORT=str(port),
        INVENTORY_HTTP__API_TOKEN=TOKEN,
        TOKEN=TOKEN,
    )
    process = subprocess.Popen(
        ["bash", "-c", "exec " + run.replace(".venv/bin/", f"{BIN}/")],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        sandbox = _read_sandbox_line(process, lines)
        assert wait_for(lambda: _ready(port), seconds=60), "".join(lines)
        yield Shell(cwd, env, port, sandbox)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None and not any(
            t.name == "readme-serve-log" for t in threading.enumerate()
        ):
            process.stdout.close()  # serve failed before its log was handed to _drain


def _read_sandbox_line(process: subprocess.Popen[str], lines: list[str]) -> dict[str, str]:
    """The simulators' addresses from serve's ``sandbox_mode`` log line (JSON off a terminal)."""
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"serve exited early: {''.join(lines)}")
        lines.append(line)
        if '"sandbox_mode"' in line:
            simulators: dict[str, str] = json.loads(line)["simulators"]
            # Keep reading (a full pipe would block serve's logging); the tail helps a failure.
            threading.Thread(
                target=_drain, args=(process.stdout, lines), name="readme-serve-log", daemon=True
            ).start()
            return simulators
    raise AssertionError(f"no sandbox_mode line: {''.join(lines)}")


def _drain(stream: IO[str], lines: list[str]) -> None:
    with stream:  # closed here, at serve's exit
        for line in stream:
            lines.append(line)
            del lines[:-200]


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# -- the blocks, top to bottom ------------------------------------------------------------------


def test_quick_start_serve_runs_in_sandbox_mode(shell: Shell) -> None:
    assert set(shell.sandbox) == {"ozon", "wb", "ym"}
    assert httpx.get(f"http://127.0.0.1:{shell.port}/healthz").status_code == 200


def test_talk_to_it_curl_block(shell: Shell) -> None:
    script = sh_block("Quick start", 3).replace(
        "curl ", "curl -sS -f -o /dev/null -w '%{http_code}\\n' "
    )
    assert script.count("curl ") == 3
    done = shell.run(script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["200", "201", "200"]


@pytest.fixture(scope="module")
def stocked(shell: Shell) -> Shell:
    """The "Stock from the command line" block, with the two files it names: ``catalog.csv`` is
    the README's own CSV block, ``counts.csv`` counts its SKUs."""
    catalog = next(b.body for b in blocks() if b.language == "csv")
    (shell.cwd / "catalog.csv").write_text(catalog, encoding="utf-8")
    skus = [row["sku"] for row in csv.DictReader(io.StringIO(catalog)) if not row["bundle"]]
    (shell.cwd / "counts.csv").write_text(
        "sku,on_hand\n" + "".join(f"{sku},{20 + n}\n" for n, sku in enumerate(skus)),
        encoding="utf-8",
    )
    for command in sh_commands("Stock from the command line"):
        done = shell.run(command)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
        if command.endswith("stock show SKU-1 --json"):
            assert json.loads(done.stdout)["on_hand"] == 7  # set 10, adjust --by=-3
        if command.startswith("inventory-engine catalog import"):
            assert "3 catalog entries written (1 bundles)" in done.stdout
    return shell


def test_stock_block_sets_counts_and_imports_the_catalog(stocked: Shell) -> None:
    def stock(sku: str) -> dict[str, Any]:
        answer = httpx.get(f"http://127.0.0.1:{stocked.port}/v1/stock/{sku}", headers=AUTH)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    red, blue, bundle = stock("MUG-RED"), stock("MUG-BLUE"), stock("MUG-SET")
    assert (red["on_hand"], blue["on_hand"]) == (20, 21)  # from counts.csv
    assert bundle["available"] == min(red["available"], blue["available"])  # MUG-RED:1;MUG-BLUE:1
    assert all(view["listed"] for view in bundle["channels"].values())


ORDER_IN_README = "57195475-0050-3"


def test_operating_block(stocked: Shell) -> None:
    """Every operating command as written; the Ozon posting ``order show`` names is placed on
    the sandbox's Ozon simulator first, so that the command has an order to show."""
    commands = sh_commands("Operating it")
    assert any(ORDER_IN_README in c for c in commands)
    ozon = stocked.sandbox["ozon"]
    placed = httpx.post(
        f"{ozon}/_sim/postings",
        json={
            "posting_number": ORDER_IN_README,
            "products": [{"offer_id": "MUG-RED", "quantity": 1}],
        },
    )
    assert placed.status_code == 200, placed.text
    shown = lambda: stocked.run(f"inventory-engine order show ozon {ORDER_IN_README}")  # noqa: E731
    assert wait_for(lambda: shown().returncode == 0, seconds=60), shown().stdout
    for command in commands:
        done = stocked.run(command, timeout=180)
        # 0: nothing to report, 1: something to report (a difference, an order elsewhere...);
        # 2 would be an error, and the README's commands must not end in one.
        assert done.returncode in (0, 1), (command, done.stdout, done.stderr)
        assert "Traceback" not in done.stdout + done.stderr, command
        assert (done.stdout + done.stderr).strip(), command  # a report goes to either
        if " order show " in f" {command} ":
            assert done.returncode == 0
            assert ORDER_IN_README in done.stdout
        if command.startswith(("inventory-engine explain", "inventory-engine oversold")):
            assert done.returncode == 0, (command, done.stdout)


def test_simulate_block_starts_the_three_simulators_on_their_ports(shell: Shell) -> None:
    (command,) = sh_commands("Channels and the marketplace simulators")
    ports = [
        int(p) for p in re.findall(r":(\d{4})", sh_block("Channels and the marketplace simulators"))
    ]
    assert len(ports) == 3
    process = subprocess.Popen(
        ["bash", "-c", f"exec {command}"],
        cwd=shell.cwd,
        env=shell.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for port in ports:
            assert wait_for(
                lambda port=port: _answers(f"http://127.0.0.1:{port}/_sim/state"), seconds=30
            ), f"no simulator on :{port}"
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "Ctrl-C stops them" in output


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("heading", sorted({b.heading for b in blocks() if b.language == "toml"}))
def test_toml_blocks_are_valid_settings(tmp_path: Path, heading: str, monkeypatch) -> None:
    for name in list(os.environ):
        if name.startswith("INVENTORY_"):
            monkeypatch.delenv(name)
    for n, block in enumerate(b for b in blocks() if b.language == "toml" and b.heading == heading):
        tomllib.loads(block.body)  # names the line of a syntax error
        path = tmp_path / f"{n}.toml"
        path.write_text(block.body, encoding="utf-8")
        settings = load_settings(path)
        assert settings is not None


def test_demo_block_as_written(shell: Shell) -> None:
    (command,) = sh_commands("Quick start")[2:3]
    assert command == ".venv/bin/inventory-engine demo --seconds 30", command
    done = shell.run(command, timeout=240)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    assert "simulator limit violations: 0" in done.stdout
