"""Every benchmark in one command::

    python -m benchmarks            # full: ~25 min, writes benchmarks/RESULTS.md and the plot
    python -m benchmarks --quick    # a few minutes; prints, writes nothing unless --write
    python -m benchmarks --only ledger,growth

Order: the simulation first (no servers), then the ledger (alone on the machine), the ledger
with 100 accounts on one server and on a cluster, PostgreSQL next to it, growth, and the
end-to-end propagation through ``serve`` last. Each benchmark writes only its own section of
RESULTS.md; one that fails is reported and the rest still run.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

BENCHMARKS = ("flash_sale", "ledger", "accounts", "postgres", "growth", "propagation")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs of every benchmark")
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    writes = parser.add_mutually_exclusive_group()
    writes.add_argument("--write", action="store_true", help="write RESULTS.md in quick mode too")
    writes.add_argument("--no-write", action="store_true", help="only print, never write")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",")] if args.only else list(BENCHMARKS)
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    flags = [
        *(["--quick"] if args.quick else []),
        *(["--write"] if args.write else []),
        *(["--no-write"] if args.no_write else []),
    ]
    failed: list[str] = []
    for name in chosen:
        print(f"\n=== benchmarks.{name} {' '.join(flags)}", flush=True)
        started = time.monotonic()
        try:
            if name == "postgres":
                # Debian's postgresql and redis-tools (redis-benchmark), installed if missing.
                setup = Path(__file__).with_name("setup_postgres.sh")
                subprocess.run(["bash", str(setup), "--with-redis-benchmark"], check=True)
            module = importlib.import_module(f"benchmarks.{name}")
            code = module.main(flags)
        except Exception:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            code = 1
        print(f"=== benchmarks.{name}: exit {code} in {time.monotonic() - started:.0f} s")
        if code:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
