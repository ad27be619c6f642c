"""benchmarks/RESULTS.md: one section per benchmark between ``<!-- name:start -->`` and
``<!-- name:end -->``; writing a section keeps every other one as it is. Every section names the
machine and the code it was measured on (:func:`machine_info`, :func:`code_version`)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import subprocess
import tempfile
from pathlib import Path

from inventory_engine.ledger.scripts import script_source

RESULTS_PATH = Path(__file__).with_name("RESULTS.md")
HEADER = """# Benchmark results

Figures measured by the scripts in `benchmarks/`. Each benchmark owns one section between
`<!-- <name>:start -->` and `<!-- <name>:end -->` markers and rewrites only that section when it
is run again; text outside the markers is kept.
"""


def write_section(name: str, section: str, path: Path = RESULTS_PATH) -> None:
    """Replace (or append) the section ``name`` of RESULTS.md."""
    start_mark, end_mark = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start_mark}\n{section.strip()}\n{end_mark}"
    if path.exists():
        text = path.read_text(encoding="utf-8")
        start, end = text.find(start_mark), text.find(end_mark)
        if start != -1 and end > start:
            text = text[:start] + block + text[end + len(end_mark) :]
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
    else:
        text = HEADER + "\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def machine_info() -> dict[str, str]:
    cpu_model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    mem_total = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                break
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu_model,
        "ram": mem_total,
        "kernel": f"{platform.system()} {platform.release()}",
        "tmp_fs": _filesystem_of(Path(tempfile.gettempdir())),
    }


def code_version() -> str:
    """Git commit of the checkout, whether the engine has uncommitted changes, script SHA1."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "inventory_engine"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        head, dirty = "?", ""
    state = " with uncommitted changes under inventory_engine/" if dirty else ""
    source = script_source("apply_order_event").encode()
    sha = hashlib.sha1(source, usedforsecurity=False).hexdigest()[:12]
    return f"git {head}{state}; apply_order_event script SHA1 {sha}"


def _filesystem_of(path: Path) -> str:
    """Device and type of the mount holding ``path`` (where the AOF runs write)."""
    best, found = "", "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and str(path.resolve()).startswith(parts[1]):
                if len(parts[1]) > len(best):
                    best, found = parts[1], f"{parts[2]} on {parts[0]} (mounted at {parts[1]})"
    return found
