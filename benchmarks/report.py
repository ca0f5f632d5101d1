"""Timing of ``python -m reports.build`` per phase: load, tables, each figure, the files written.

    python -m benchmarks.report RUN_DIR [--no-cli] [--repeat N]

The run folder is copied to a temporary folder first, so RUN_DIR keeps its own report. The phases
are timed by wrapping the functions the build calls (nested phases are indented and included in
their parent's time); a function the installed version lacks is skipped. The last rows time the
whole command line in a fresh interpreter (imports included), as a user runs it, from the current
folder: run it from the checkout whose reports are to be timed.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# (label, module, attribute); a label with "{}" takes the call's first argument after self (a
# figure's or a batch's name).
PHASES = (
    ("load", "reports.build", "load_run"),
    ("tables", "reports.tables", "ea_tables"),
    ("convergence table", "reports.tables", "convergence_table"),
    ("prior sensitivity", "reports.tables", "prior_sensitivity_table"),
    ("pointwise log-likelihood", "reports.tables", "pointwise_log_likelihood"),
    ("convergence summary", "reports.tables", "convergence_summary"),
    ("figures: {}", "reports.build", "Report.add_figures"),
    ("figure {}", "reports.build", "Report.add_figure"),
    ("methods", "reports.methods", "ea_methods"),
    ("BARG checklist", "reports.build", "_add_barg"),
    ("write tables + html", "reports.build", "write_report"),
    ("install", "reports.build", "install"),
)


class Timer:
    def __init__(self):
        self.rows: list[tuple[int, str, float, float]] = []
        self.depth = 0

    @contextlib.contextmanager
    def phase(self, name: str, nest: bool = True):
        """Time a block; with ``nest`` the phases inside it are listed under it."""
        row = len(self.rows)
        self.rows.append((self.depth, name, float("nan"), float("nan")))
        step = int(nest)
        self.depth += step
        start, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.depth -= step
            self.rows[row] = (self.depth, name, time.perf_counter() - start, time.process_time() - cpu)

    def wrap(self, owner, attr: str, label: str) -> None:
        fn = getattr(owner, attr)

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            name = label.format(_first_argument(args, kwargs)) if "{}" in label else label
            with self.phase(name):
                return fn(*args, **kwargs)

        setattr(owner, attr, timed)


def _first_argument(args, kwargs) -> str:
    return str(kwargs.get("name", kwargs.get("batch", args[1] if len(args) > 1 else "?")))


def instrument(timer: Timer) -> list[str]:
    """Wrap every phase function that exists; returns the labels of those that do not."""
    import importlib

    missing = []
    for label, module, attr in PHASES:
        owner = importlib.import_module(module)
        *path, last = attr.split(".")
        for part in path:
            owner = getattr(owner, part, None)
        if owner is None or not callable(getattr(owner, last, None)):
            missing.append(label)
            continue
        timer.wrap(owner, last, label)
    return missing


def time_in_process(run_dir: Path) -> tuple[Timer, list[str]]:
    import matplotlib

    matplotlib.use("Agg")
    timer = Timer()
    with timer.phase("import reports.build"):
        from reports import build
    missing = instrument(timer)
    with timer.phase("total after import", nest=False):
        build.build_run(build.load_run(run_dir))
    return timer, missing


def time_cli(run_dir: Path) -> tuple[float, float]:
    """Wall and CPU seconds (the child's user + system time) of the command line."""
    start, before = time.perf_counter(), os.times()
    subprocess.run([sys.executable, "-m", "reports.build", str(run_dir)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "MPLBACKEND": "Agg"})
    after = os.times()
    cpu = after.children_user + after.children_system - before.children_user - before.children_system
    return time.perf_counter() - start, cpu


def _merge_repeats(rows: list[tuple]) -> list[tuple]:
    """Consecutive calls of one phase at one depth as one row, named with the count."""
    out = []
    for (depth, name), group in itertools.groupby(rows, key=lambda r: r[:2]):
        group = list(group)
        label = name if len(group) == 1 else f"{name} (×{len(group)})"
        out.append((depth, label, sum(r[2] for r in group), sum(r[3] for r in group)))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder (fit_ea, fit_rr, project, budget)")
    p.add_argument("--no-cli", action="store_true", help="skip timing the command line in a fresh interpreter")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="time the command line N times and show the fastest and the median (default 1)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tpflux-report-bench.") as tmp:
        work = Path(tmp) / args.run_dir.name
        shutil.copytree(args.run_dir, work, ignore=shutil.ignore_patterns("report.html", "figures", "tables",
                                                                           "methods.*", ".report.*"))
        timer, missing = time_in_process(work)
        cli = [] if args.no_cli else sorted(time_cli(work) for _ in range(max(1, args.repeat)))
    # Wall seconds are what a user waits; CPU seconds vary less when other processes share the cores.
    print(f"{'phase':<46} {'wall s':>7} {'CPU s':>7}")
    total = [r for r in timer.rows if r[1] == "total after import"]
    for depth, name, wall, cpu in _merge_repeats([r for r in timer.rows if r not in total]) + total:
        print(f"{'  ' * depth + name:<46} {wall:7.2f} {cpu:7.2f}")
    if len(cli) == 1:
        print(f"{'python -m reports.build (fresh interpreter)':<46} {cli[0][0]:7.2f} {cli[0][1]:7.2f}")
    elif cli:
        for what, (wall, cpu) in (("fastest", cli[0]), ("median", cli[len(cli) // 2])):
            print(f"{f'python -m reports.build, {what} of {len(cli)}':<46} {wall:7.2f} {cpu:7.2f}")
    if missing:
        print("not in this version: " + ", ".join(missing))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
