"""benchmarks/RESULTS.md: one section per benchmark between ``<!-- name:start -->`` and
``<!-- name:end -->``; writing a section keeps every other one as it is."""

from __future__ import annotations

from pathlib import Path

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
