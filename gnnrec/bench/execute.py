"""Running a suite's cells: data groups, resume, per-cell records and progress lines.

Cells run in-process through :func:`gnnrec.runner.prepare_data` and
:func:`gnnrec.runner.run_model`. Cells whose prepared data would be identical (same
dataset, seed, data / split / graph settings, positives and mask: :func:`~gnnrec.bench.suite.data_key`)
form a *data group*; the data is prepared once per group and shared by its models, so the
comparison is on one split and the suite does not pay for loading per model.

Each finished cell's run directory holds the normal run contract plus a ``bench`` section
added to ``metrics.json`` *last* (wall time, peak memory, config hash, load average):
a cell is finished iff its ``metrics.json`` parses, has every suite metric under ``test``
and has that ``bench`` section with the cell's current config hash. An interrupted cell
(no ``bench`` section) or a cell whose config changed since is run again on ``--resume``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gnnrec.bench.memory import PeakMemory
from gnnrec.bench.suite import Cell, Suite, validate_models
from gnnrec.errors import ConfigError

log = logging.getLogger("gnnrec")


@dataclass
class CellOutcome:
    """What happened to one cell in :func:`run_suite`."""

    cell: Cell
    status: str  # "ran", "skipped" (finished before, --resume) or "failed"
    metrics: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class SuiteRun:
    """Result of :func:`run_suite`."""

    out: Path
    outcomes: list[CellOutcome] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def failed(self) -> list[CellOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


def loadavg() -> list[float]:
    """1/5/15-minute load averages (empty where unavailable)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux/macOS
        return []


def read_cell(cell: Cell, out: str | Path, metrics: Sequence[str]) -> dict[str, Any] | None:
    """The cell's ``metrics.json`` if the cell is finished (see the module docs), else None."""
    path = cell.run_dir(out) / "metrics.json"
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(m, dict) or not isinstance(m.get("test"), dict) or not isinstance(m.get("bench"), dict):
        return None
    if any(k not in m["test"] for k in metrics):
        return None
    if m["bench"].get("config_hash") != cell.config_hash:
        return None
    return m


def check_out_dir(out: Path, resume: bool) -> None:
    """Refuse to write into a non-empty output directory unless resuming."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a directory")
    if not resume and out.is_dir() and any(out.iterdir()):
        raise ConfigError(
            f"--out {out}: directory exists and is not empty; pass --resume to continue it "
            "(finished cells are skipped) or choose another --out"
        )


ProgressFn = Callable[[str], None]


def run_suite(
    suite: Suite,
    out: str | Path,
    *,
    resume: bool = False,
    progress: ProgressFn | None = print,
    trainer_progress: bool = False,
    jobs: int = 1,
) -> SuiteRun:
    """Run every unfinished cell of ``suite`` into ``out/cells/...``.

    Args:
        suite: a loaded suite (:func:`~gnnrec.bench.suite.load_suite`).
        out: output directory.
        resume: skip finished cells; without it ``out`` must be empty or absent.
        progress: called with one line per cell / data group (None: silent). With
            ``jobs > 1`` the worker processes print their lines to stdout themselves.
        trainer_progress: show the trainer's per-epoch progress bars.
        jobs: data groups run at once, each in its own process (``spawn``; every worker
            pays the imports again). 1 = everything in this process, in suite order.

    Returns:
        The outcome of every cell. A cell that raises is recorded as failed (traceback in
        its ``error.txt``) and the suite goes on; errors preparing a data group's data
        (a :class:`~gnnrec.errors.GnnrecError`, e.g. a missing dataset) are raised.
    """
    out = Path(out)
    check_out_dir(out, resume)
    if jobs <= 1:  # (with jobs > 1 each worker checks them before its first cell)
        validate_models(suite.cells)
    out.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _line: None)
    t_suite = time.perf_counter()
    result = SuiteRun(out)
    width = len(str(len(suite.cells)))
    key_metric = suite.metrics[0]

    groups: dict[str, list[Cell]] = {}
    for cell in suite.cells:
        groups.setdefault(cell.data_key, []).append(cell)
    todo_groups: list[list[Cell]] = []
    for cells in groups.values():
        todo: list[Cell] = []
        for cell in cells:
            done = read_cell(cell, out, suite.metrics) if resume else None
            if done is not None:
                result.outcomes.append(CellOutcome(cell, "skipped", done))
                say(
                    f"[{cell.index:>{width}}/{len(suite.cells)}] {cell.dataset} / {cell.model} / seed {cell.seed}: "
                    f"finished before, skipped ({key_metric} {done['test'][key_metric]:.4f})"
                )
            else:
                todo.append(cell)
        if todo:
            todo_groups.append(todo)

    if jobs > 1 and len(todo_groups) > 1:
        result.outcomes += _run_parallel(suite, out, todo_groups, jobs, progress is not None, trainer_progress)
    else:
        for todo in todo_groups:
            result.outcomes += run_group(suite, todo, out, say, trainer_progress)
    result.outcomes.sort(key=lambda o: o.cell.index)
    result.wall_s = time.perf_counter() - t_suite
    return result


def run_group(
    suite: Suite, cells: Sequence[Cell], out: Path, say: ProgressFn, trainer_progress: bool = False
) -> list[CellOutcome]:
    """Prepare the data of one data group once and run its cells on it, in order."""
    import torch

    from gnnrec.runner import prepare_data

    width = len(str(len(suite.cells)))
    first = cells[0].config
    if first.threads is not None:
        torch.set_num_threads(first.threads)
    t0 = time.perf_counter()
    prepared = prepare_data(first)
    prep_s = time.perf_counter() - t0
    s = prepared.summary()
    say(
        f"data {cells[0].dataset} (seed {first.seed}): {s['users']} users, {s['items']} items, "
        f"{s['events']} events; train/valid/test {s['train']}/{s['valid']}/{s['test']} "
        f"({prep_s:.1f} s, shared by {len(cells)} cell(s))"
    )
    return [_run_cell(cell, prepared, prep_s, out, suite, say, width, trainer_progress) for cell in cells]


def _group_worker(task: tuple[Any, ...]) -> list[tuple[int, str, str | None]]:
    """Run one data group in a worker process; returns (cell index, status, error) rows."""
    from gnnrec.bench.suite import load_suite

    source, base_dir, overrides, indices, out, verbose, trainer_progress = task
    suite = load_suite(source, overrides, base_dir=base_dir)
    validate_models(suite.cells)
    cells = [suite.cells[i - 1] for i in indices]
    say: ProgressFn = (lambda line: print(line, flush=True)) if verbose else (lambda _line: None)
    return [(o.cell.index, o.status, o.error) for o in run_group(suite, cells, Path(out), say, trainer_progress)]


def _run_parallel(
    suite: Suite, out: Path, groups: list[list[Cell]], jobs: int, verbose: bool, trainer_progress: bool
) -> list[CellOutcome]:
    import multiprocessing

    if suite.source is None:
        raise ConfigError("jobs > 1 needs a suite loaded with load_suite (its source is unknown)")
    tasks = [
        (suite.source, suite.base_dir, suite.overrides, [c.index for c in g], str(out), verbose, trainer_progress)
        for g in groups
    ]
    by_index = {c.index: c for g in groups for c in g}
    outcomes: list[CellOutcome] = []
    # spawn, not fork: torch's thread pools and the parent's state do not survive a fork.
    with multiprocessing.get_context("spawn").Pool(min(jobs, len(groups))) as pool:
        for rows in pool.imap_unordered(_group_worker, tasks):
            for index, status, error in rows:
                cell = by_index[index]
                metrics = read_cell(cell, out, suite.metrics) if status == "ran" else None
                outcomes.append(CellOutcome(cell, status, metrics, error))
    return outcomes


def _run_cell(
    cell: Cell,
    prepared: Any,
    prep_s: float,
    out: Path,
    suite: Suite,
    say: ProgressFn,
    width: int,
    trainer_progress: bool,
) -> CellOutcome:
    from gnnrec.runner import run_model

    run_dir = cell.run_dir(out)
    if run_dir.exists():  # an interrupted or stale cell: start it clean
        shutil.rmtree(run_dir)
    head = f"[{cell.index:>{width}}/{len(suite.cells)}] {cell.dataset} / {cell.model} / seed {cell.seed}"
    load_before = loadavg()
    t0 = time.perf_counter()
    try:
        with PeakMemory() as mem:
            res = run_model(cell.config, prepared, run_dir, progress=trainer_progress)
    except Exception as err:  # noqa: BLE001 - one failing cell must not lose the others
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "error.txt").write_text(traceback.format_exc())
        say(f"{head}: FAILED ({type(err).__name__}: {err}); traceback in {run_dir / 'error.txt'}")
        return CellOutcome(cell, "failed", error=f"{type(err).__name__}: {err}")
    wall = time.perf_counter() - t0
    metrics = dict(res.metrics)
    metrics["bench"] = {
        "suite": suite.name,
        "dataset": cell.dataset,
        "model": cell.model,
        "seed": cell.seed,
        "config_hash": cell.config_hash,
        "wall_s": wall,  # run_model: fit + test evaluation + writing the run directory
        "prepare_s": prep_s,  # the data group's preparation, shared by its cells
        **mem.record(),
        "load_avg_before": load_before,
        "load_avg_after": loadavg(),
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    # Written last and atomically: its `bench` section marks the cell finished.
    tmp = run_dir / "metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=2))
    tmp.replace(run_dir / "metrics.json")
    key = suite.metrics[0]
    t = metrics["timing"]
    say(
        f"{head}: {key} {metrics['test'][key]:.4f}  epochs {metrics['epochs']}  fit {t['fit_s']:.1f} s  "
        f"wall {wall:.1f} s  peak {mem.peak_mb:.0f} MB"
    )
    return CellOutcome(cell, "ran", metrics)
