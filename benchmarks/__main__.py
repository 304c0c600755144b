"""Run spinesim's benchmarks: ``python -m benchmarks [NAME ...]`` (all of them if no name is given).

Each ``benchmarks/bench_<name>.py`` has ``run() -> list[Measurement]``. Every measurement is a ratio
against a baseline run in the same process, so the figures mean the same on any machine.
Results are printed as a table and written to ``out/benchmarks/<name>.json``.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

import benchmarks


def main(names: list[str]) -> int:
    available = sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))
    unknown = [n for n in names if n not in available]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(available)}", file=sys.stderr)
        return 2
    console = Console()
    out = Path("out/benchmarks")
    out.mkdir(parents=True, exist_ok=True)
    for name in names or available:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        console.print(f"[bold]{name}[/]: {module.__doc__.strip().splitlines()[0]}")
        results = module.run()
        table = Table("measurement", "value", "baseline", "ratio", "goal", "met")
        for r in results:
            table.add_row(r.name, r.value_text, r.baseline_text, f"{r.ratio:.2f}", r.goal_text, "yes" if r.met else "NO")
        console.print(table)
        (out / f"{name}.json").write_text(json.dumps([asdict(r) | {"met": r.met} for r in results], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
