"""The objective and the worker processes of a sweep.

A worker loads the study from the shared storage and runs one trial at a time
(``study.optimize(n_trials=1)``, which brings Optuna's heartbeat and stale-trial check)
until the study holds the requested number of finished (COMPLETE + PRUNED) trials. With
``--workers W`` the command starts W such processes (multiprocessing, spawn) against the
same storage; workers on other machines do the same through a PostgreSQL URL.

Stopping rule: before each trial a worker counts finished and running trials; it stops
when ``finished >= n`` and waits (polling) while ``finished + running >= n``, because a
running trial can still fail and need a replacement. Two workers that look at the same
moment can both start the last trial, so a study may end with up to W-1 finished trials
more than asked; never fewer.

Data reuse: :func:`gnnrec.runner.prepare_data` (load, validate, split, graph, targets) runs
once per worker process and is reused by every trial whose data-relevant settings are the
same — everything in the config except the model, the training loop and the evaluation
cut-offs (see :func:`data_key`). A space that sweeps ``split.*`` or ``data.*`` simply
prepares again when those values change (the last prepared set is kept).
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gnnrec.config import ExperimentConfig, config_from_dict
from gnnrec.errors import GnnrecError
from gnnrec.sweep.space import SearchSpace, format_value, ordered_names

log = logging.getLogger("gnnrec")

#: Seconds between checks while the last trials run in other workers.
POLL_S = 2.0


def data_key(cfg: ExperimentConfig) -> str:
    """Text identifying what :func:`~gnnrec.runner.prepare_data` depends on.

    Conservative by exclusion: every config key counts except those known to act only
    after the data are prepared (model, training loop, evaluation cut-offs, naming and
    devices). ``train.positives`` (which pairs are positives) and ``eval.mask`` (which
    known items are excluded from the ranking) shape the prepared data, so they count.
    """
    d = cfg.model_dump(mode="json")
    for key in ("name", "out_dir", "device", "threads", "model", "compare", "sweep"):
        d.pop(key, None)
    d["train"] = {"positives": d["train"]["positives"]}
    d["eval"] = {"mask": d["eval"]["mask"]}
    return json.dumps(d, sort_keys=True)


@dataclass(frozen=True)
class SweepJob:
    """Everything a worker process needs (picklable for multiprocessing spawn).

    Attributes:
        config: the validated experiment config as a JSON-compatible dict.
        config_dir: folder of the config file (for the hook module).
        storage: storage URL.
        study: study name.
        sweep_dir: folder of the trials' run directories.
        n_trials: finished trials to reach.
        workers: number of workers of this command (for the progress prefix and threads).
        worker: this worker's index (sampler seed offset).
        verbose: log INFO in the worker.
    """

    config: dict[str, Any]
    config_dir: str | None
    storage: str
    study: str
    sweep_dir: str
    n_trials: int
    workers: int = 1
    worker: int = 0
    verbose: bool = False


class Objective:
    """``objective(trial) -> validation metric`` of one trial's run.

    Args:
        space: the validated search space.
        sweep_dir: parent of the trials' run directories (``trial-NNNN``).
        threads: torch threads when the config leaves ``threads`` unset.
    """

    def __init__(self, space: SearchSpace, sweep_dir: str | Path, threads: int | None = None) -> None:
        self.space = space
        self.sweep_dir = Path(sweep_dir)
        self.threads = threads
        self._key: str | None = None
        self._prepared: Any = None
        self.prepare_count = 0

    def prepared_for(self, cfg: ExperimentConfig) -> Any:
        """The prepared data of ``cfg``, reused when the data-relevant settings match."""
        from gnnrec.runner import prepare_data

        key = data_key(cfg)
        if key != self._key:
            self._prepared = None  # free the previous data before building the next
            self._prepared = prepare_data(cfg)
            self._key = key
            self.prepare_count += 1
        return self._prepared

    def __call__(self, trial: Any) -> float:
        # First: who runs this trial, so a re-run can tell a dead worker from a live one.
        trial.set_user_attr("worker_host", socket.gethostname())
        trial.set_user_attr("worker_pid", os.getpid())
        try:
            return self._run(trial)
        except GnnrecError as err:
            trial.set_user_attr("error", str(err))  # failed on its own (not interrupted): no retry
            raise
        except Exception as err:  # a bug: recorded, then it stops the worker with its traceback
            trial.set_user_attr("error", f"{type(err).__name__}: {err}")
            raise

    def _run(self, trial: Any) -> float:
        from gnnrec.runner import run
        from gnnrec.sweep.pruning import OptunaPruningCallback

        raw = self.space.trial_config(trial)
        cfg = config_from_dict(raw)
        if cfg.threads is None and self.threads is not None:
            cfg = cfg.model_copy(update={"threads": self.threads})
        run_dir = self.sweep_dir / f"trial-{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("config", cfg.model_dump(mode="json"))
        prepared = self.prepared_for(cfg)
        pruning = OptunaPruningCallback(trial, self.space.metric)
        result = run(cfg, run_dir, progress=False, callbacks=[pruning], prepared=prepared)
        m = result.metrics
        trial.set_user_attr("epochs", m["epochs"])
        trial.set_user_attr("best_epoch", m["best_epoch"])
        trial.set_user_attr("valid", m["valid"])
        trial.set_user_attr("test", m["test"])
        pruning.raise_if_pruned()
        value = m["valid"].get(self.space.metric)
        if value is None or not math.isfinite(float(value)):
            raise GnnrecError(
                f"trial {trial.number}: no finite validation {self.space.metric} (got {value}); "
                "is there a validation split?"
            )
        return float(value)


def trial_line(trial: Any, metric: str, order: Sequence[str] = ()) -> str:
    """One progress line: number, state, value, parameters, duration."""
    state = trial.state.name
    if state == "COMPLETE":
        value = f"{metric}={format_value(trial.value)}"
    elif state == "PRUNED":
        steps = sorted(trial.intermediate_values)
        last = trial.intermediate_values[steps[-1]] if steps else float("nan")
        value = f"{metric}={format_value(last)} at epoch {steps[-1] if steps else 0}"
    else:
        value = trial.user_attrs.get("error", "interrupted")
    params = " ".join(
        f"{k}={format_value(trial.params[k])}" for k in ordered_names(trial.params, list(order))
    )
    secs = trial.duration.total_seconds() if trial.duration is not None else float("nan")
    return f"trial {trial.number:>4} {state:<8} {value}  {params}  ({secs:.1f} s)"


def run_worker(job: SweepJob) -> int:
    """Run trials against the study until it holds ``job.n_trials`` finished ones.

    Returns:
        The number of trials this worker ran.

    Raises:
        GnnrecError: as many trials failed in this worker as were requested (a broken
            space should not loop forever).
    """
    import optuna

    from gnnrec.sweep.study import (
        count_trials,
        make_pruner,
        make_sampler,
        make_storage,
        open_study,
        recover_interrupted,
    )

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = config_from_dict(job.config)
    space = SearchSpace.from_config(cfg, job.config_dir)
    assert cfg.sweep is not None
    base_seed = cfg.sweep.seed if cfg.sweep.seed is not None else cfg.seed
    # Each worker its own sampler seed: equal seeds would propose the same startup trials.
    sampler = make_sampler(cfg.sweep, base_seed + job.worker)
    pruner = make_pruner(cfg.sweep, int(space.base["train"]["epochs"]))
    study = open_study(
        make_storage(job.storage),
        job.study,
        direction=space.direction,
        metric=space.metric,
        sampler=sampler,
        pruner=pruner,
    )
    threads = None
    if job.workers > 1:  # W workers share the cores instead of each taking all of them
        threads = max(1, (os.cpu_count() or 1) // job.workers)
    objective = Objective(space, job.sweep_dir, threads=threads)
    prefix = f"[w{job.worker}] " if job.workers > 1 else ""

    finished: list[Any] = []

    def report(study: Any, trial: Any) -> None:
        finished.append(trial)
        print(prefix + trial_line(trial, space.metric, list(space.params)), flush=True)

    ran = failures = 0
    while True:
        c = count_trials(study)
        if c.finished >= job.n_trials:
            break
        if c.finished + c.running >= job.n_trials:
            time.sleep(POLL_S)  # the last trials run elsewhere; one may fail and need redoing
            recover_interrupted(study, retry=False)
            continue
        study.optimize(objective, n_trials=1, catch=(GnnrecError,), callbacks=[report], gc_after_trial=False)
        ran += 1
        if finished and finished[-1].state.name == "FAIL":
            failures += 1
            if failures >= job.n_trials:
                last_error = finished[-1].user_attrs.get("error", "")
                raise GnnrecError(f"{failures} trials failed in this worker; last error: {last_error}")
    return ran


def _worker_entry(job: SweepJob) -> None:
    """Body of a spawned worker process: errors become one ``error:`` line, exit 2."""
    from gnnrec.cli import _quiet_warnings, _setup_logging

    _quiet_warnings()
    _setup_logging(job.verbose)
    try:
        run_worker(job)
    except GnnrecError as err:
        sys.stderr.write(f"error: [w{job.worker}] {err}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


def run_workers(job: SweepJob, workers: int) -> None:
    """Run ``workers`` workers against the study: this process is worker 0, the others are
    spawned processes (worker 0 reuses this process's imports; spawn, not fork, because a
    forked copy of a process holding torch threads and database connections is unsafe).

    Raises:
        GnnrecError: worker 0 failed (after the others ended), or a spawned worker exited
            with a non-zero status.
    """
    if workers <= 1:
        run_worker(replace(job, workers=1, worker=0))
        return
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(
            target=_worker_entry, args=(replace(job, workers=workers, worker=i),), name=f"gnnrec-sweep-w{i}"
        )
        for i in range(1, workers)
    ]
    for p in procs:
        p.start()
    error: GnnrecError | None = None
    try:
        run_worker(replace(job, workers=workers, worker=0))
    except GnnrecError as err:
        error = err
    except KeyboardInterrupt:
        for p in procs:
            p.join(timeout=10)  # they got the same SIGINT; let them mark their trials
            if p.is_alive():
                p.terminate()
        raise
    for p in procs:
        p.join()  # the others finish the trials they are running
    if error is not None:
        raise GnnrecError(f"[w0] {error}")
    bad = [(i, p.exitcode) for i, p in enumerate(procs, 1) if p.exitcode != 0]
    if bad:
        raise GnnrecError(
            "sweep worker(s) failed: " + ", ".join(f"w{i} exit status {code}" for i, code in bad)
        )
