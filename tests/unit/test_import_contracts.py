"""The import contracts of ``pyproject.toml`` (``[tool.importlinter]``): imports run one way
through the layers, only the sandbox wiring uses the simulators, and the domain is pure. Run
here so that the README's test command enforces them; ``.ci/run`` runs ``lint-imports`` too."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_import_contracts_are_kept() -> None:
    done = subprocess.run(
        [Path(sys.executable).with_name("lint-imports"), "--no-cache"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    ids = {c["id"] for c in contracts["contracts"]}
    assert ids == {"layers", "simulators", "pure-domain"}
    assert f"Contracts: {len(ids)} kept, 0 broken." in done.stdout
