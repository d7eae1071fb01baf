"""``gnnrec bench SUITE.yaml``: run a benchmark suite (models × datasets × seeds) and report.

Usage::

    gnnrec bench benchmarks/suites/quickstart.yaml --out runs/quickstart
    gnnrec bench benchmarks/suites/quickstart.yaml --out runs/quickstart --resume   # skip finished cells
    gnnrec bench benchmarks/suites/ml-100k.yaml --dry-run                           # list the cells
    gnnrec bench benchmarks/suites/quickstart.yaml --out runs/qs --snapshot benchmarks/results/quickstart

Each cell is a ``gnnrec run`` in ``<out>/cells/<dataset>/<model>/seed-<s>/``; the tables
(``table.md``, ``table.csv``, ``table.tex``, ``cells.csv``) and figures (``*.png``) are
written to ``--out`` and the table is printed. See :mod:`gnnrec.bench`.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any


def register(sub: Any) -> None:
    """Add the ``bench`` sub-command."""
    p = sub.add_parser(
        "bench",
        help="run a benchmark suite (models × datasets × seeds) and write tables and plots",
        description="Run every cell (dataset, model, seed) of SUITE.yaml as a `gnnrec run` into "
        "OUT/cells/<dataset>/<model>/seed-<s>/, preparing each data set once per seed and sharing it "
        "across models, then write table.md / table.csv / table.tex (metrics mean ± std over seeds, fit "
        "time, s/epoch, peak memory, published numbers and ratios), cells.csv and plots (*.png) to OUT "
        "and print the table.",
    )
    p.add_argument("suite", help="suite YAML (see benchmarks/suites/)")
    p.add_argument("--out", help="output directory (default: runs/bench/<suite name>)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an existing --out: finished cells are skipped, the others (re)run",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override applied to every cell after the suite's own, e.g. train.epochs=2",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="data groups (dataset × seed) run at once, each in its own process (default 1: one process, "
        "suite order); every worker pays the imports again",
    )
    p.add_argument("--dry-run", action="store_true", help="validate the suite and list its cells; run nothing")
    p.add_argument("--no-plots", action="store_true", help="write the tables only")
    p.add_argument(
        "--snapshot",
        metavar="DIR",
        help="also copy the tables and plots into DIR (e.g. benchmarks/results/quickstart) with a README "
        "naming the command, commit, machine and load average",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no per-cell progress lines")
    p.set_defaults(func=cmd_bench)


def _command_line(args: argparse.Namespace, out: str) -> str:
    parts = ["gnnrec", "bench", args.suite, "--out", out]
    if args.resume:
        parts.append("--resume")
    if args.jobs != 1:
        parts += ["--jobs", str(args.jobs)]
    for s in args.set or []:
        parts += ["--set", s]
    if args.no_plots:
        parts.append("--no-plots")
    if args.snapshot:
        parts += ["--snapshot", args.snapshot]
    return " ".join(shlex.quote(p) for p in parts)


def cmd_bench(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from gnnrec.bench.execute import check_out_dir, loadavg, run_suite
    from gnnrec.bench.report import (
        machine_info,
        rich_table,
        write_report,
        write_snapshot,
    )
    from gnnrec.bench.suite import load_suite, validate_models
    from gnnrec.cli import _console
    from gnnrec.errors import ConfigError
    from gnnrec.utils.runinfo import git_commit

    console = _console()
    suite = load_suite(args.suite, list(args.set or []))
    out = Path(args.out) if args.out else Path("runs") / "bench" / suite.name
    n = len(suite.cells)
    if args.jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {args.jobs}")
    if args.dry_run:
        validate_models(suite.cells)
        groups = len({c.data_key for c in suite.cells})
        console.print(
            f"suite {suite.name}: {len(suite.datasets)} dataset(s) × {len(suite.models)} model(s) × "
            f"{len(suite.config.seeds)} seed(s) = {n} cells, {groups} data group(s)"
        )
        for c in suite.cells:
            console.print(
                f"  [{c.index}/{n}] {c.dataset} / {c.model} / seed {c.seed}: {c.config.model.name} "
                f"(epochs ≤ {c.config.train.epochs}) -> {c.run_dir(out)}",
                markup=False,
            )
        return 0
    check_out_dir(out, args.resume)
    command = _command_line(args, str(out))
    started = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    load_before = loadavg()
    console.print(
        f"suite {suite.name}: {n} cells ({len(suite.datasets)} dataset(s) × {len(suite.models)} model(s) × "
        f"{len(suite.config.seeds)} seed(s)) -> {out}",
        markup=False,
    )
    say = None if args.quiet else (lambda line: console.print(line, markup=False, highlight=False))
    result = run_suite(suite, out, resume=args.resume, progress=say, jobs=args.jobs)
    commit = git_commit(Path(args.suite).resolve().parent) or git_commit(Path.cwd())
    run_info: dict[str, Any] = {
        "suite": suite.name,
        "suite_file": str(args.suite),
        "command": command,
        "commit": commit,
        "machine": machine_info(),
        "started_utc": started,
        "wall_s": result.wall_s,
        "process_s": _process_seconds(),
        "load_avg_before": load_before,
        "load_avg_after": loadavg(),
        "ran": sum(o.status == "ran" for o in result.outcomes),
        "skipped": sum(o.status == "skipped" for o in result.outcomes),
        "failed": len(result.failed),
    }
    import json

    previous = out / "bench.json"
    if run_info["ran"] == 0 and not run_info["failed"] and previous.is_file():
        # Nothing ran (a resume of a finished suite re-renders the report): keep the facts of
        # the invocation that ran the cells, so a snapshot describes the real run.
        try:
            kept = json.loads(previous.read_text())
        except ValueError:
            kept = None
        if isinstance(kept, dict) and kept.get("suite") == suite.name:
            kept["rendered_by"] = {"command": command, "utc": started, "commit": commit}
            run_info = kept
    previous.write_text(json.dumps(run_info, indent=2) + "\n")
    report = write_report(suite, out, run_info, plots=not args.no_plots)
    console.print(rich_table(suite, report["rows"]))
    ran = sum(o.status == "ran" for o in result.outcomes)
    skipped = sum(o.status == "skipped" for o in result.outcomes)
    console.print(
        f"{ran} cell(s) run, {skipped} skipped, {len(result.failed)} failed in "
        f"{result.wall_s:.1f} s; tables and plots in {out}",
        markup=False,
    )
    if args.snapshot:
        files = write_snapshot(out, args.snapshot, run_info)
        console.print(f"snapshot: {len(files)} file(s) in {args.snapshot}", markup=False)
    total = _process_seconds()
    if total is not None:
        console.print(f"{total:.1f} s since the process started (imports, cells, report)", markup=False)
    return 1 if result.failed else 0


def _process_seconds() -> float | None:
    """Wall seconds since this process started (imports included)."""
    import time

    try:
        import psutil

        return time.time() - psutil.Process().create_time()
    except Exception:  # noqa: BLE001 - informational only
        return None
