"""Storage, study creation / resume, and recovery of trials left behind by dead workers.

Resume: the study is created with ``load_if_exists=True``, so re-running the same command
continues it. A trial whose worker died (``kill -9``, a crash, a lost machine) stays
RUNNING in the storage; :func:`recover_interrupted` marks it FAIL in two ways:

* Same host: every trial records its worker's host name and PID (user attributes
  ``worker_host`` / ``worker_pid``) as its first action. When that process no longer
  exists — or the PID now belongs to a process started after the trial, i.e. it was
  reused — the trial is failed at once. This is what makes "kill, re-run" immediate.
* Other hosts (a shared PostgreSQL study): Optuna's heartbeat. The storage is an
  ``RDBStorage(heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)``; a running trial
  whose heartbeat is older than the grace period is failed by
  ``optuna.storages.fail_stale_trials`` (also called by Optuna before every trial).

Interrupted trials (FAIL without an ``error`` attribute, which the objective sets for
trials that failed on their own) have their parameters queued again once
(``enqueue_trial``, user attribute ``retry_of``), so the point TPE chose is not lost.
"""

from __future__ import annotations

import os
import socket
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gnnrec.config import SweepConfig
from gnnrec.errors import GnnrecError

#: Seconds between heartbeats of a running trial, and silence after which another
#: process may declare it dead (only for workers on other hosts; see the module docstring).
HEARTBEAT_S = 30
GRACE_S = 120
#: SQLite lock wait: concurrent workers on one machine serialise their writes.
SQLITE_TIMEOUT_S = 120


def redact(url: str) -> str:
    """The storage URL with any password hidden (for messages and reports)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL SQLAlchemy cannot parse is reported as is
        return url


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def with_driver(url: str) -> str:
    """``postgresql://...`` with an installed driver made explicit.

    SQLAlchemy's default PostgreSQL driver changed from psycopg2 (2.0) to psycopg 3 (2.1);
    a bare ``postgresql://`` URL uses whichever of the two is installed.
    """
    import importlib.util

    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("postgresql", "postgres"):
        return url
    for module, driver in (("psycopg2", "psycopg2"), ("psycopg", "psycopg")):
        if importlib.util.find_spec(module) is not None:
            return f"postgresql+{driver}://{rest}"
    return url


def make_storage(url: str) -> Any:
    """An Optuna ``RDBStorage`` with heartbeat, and a lock timeout for SQLite.

    Raises:
        GnnrecError: the database driver is missing or the server cannot be reached.
    """
    import optuna

    engine_kwargs: dict[str, Any]
    if is_sqlite(url):
        engine_kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    else:
        engine_kwargs = {"pool_pre_ping": True}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                with_driver(url),
                engine_kwargs=engine_kwargs,
                heartbeat_interval=HEARTBEAT_S,
                grace_period=GRACE_S,
            )
    except ModuleNotFoundError as err:
        hint = " (pip install psycopg2-binary)" if url.startswith("postgres") else ""
        raise GnnrecError(f"storage {redact(url)}: database driver missing: {err}{hint}") from None
    except Exception as err:  # noqa: BLE001 - SQLAlchemy / driver errors become one line
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise GnnrecError(f"storage {redact(url)}: cannot open: {first}") from None


def make_sampler(sweep: SweepConfig, seed: int) -> Any:
    import optuna

    if sweep.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=sweep.startup_trials)


def make_pruner(sweep: SweepConfig, max_epochs: int) -> Any:
    import optuna

    p = sweep.pruner
    if p.type == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=p.startup_trials, n_warmup_steps=p.warmup_epochs)
    if p.type == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=p.min_epochs,
            max_resource=max(max_epochs, p.min_epochs),
            reduction_factor=p.reduction_factor,
        )
    return optuna.pruners.NopPruner()


def open_study(
    storage: Any,
    name: str,
    *,
    direction: str,
    metric: str,
    sampler: Any = None,
    pruner: Any = None,
) -> Any:
    """Create the study, or load it when it exists (resume).

    The study records the metric it optimises (study user attribute ``metric``); resuming
    with another metric or direction is an error rather than a silently mixed study.
    """
    import optuna

    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction=direction,  # type: ignore[arg-type]  # "maximize" / "minimize", checked by the config
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    have_dir = study.direction.name.lower()
    if have_dir != direction:
        raise GnnrecError(
            f"study '{name}' exists and is {have_dir}d; this sweep asks to {direction} "
            "(use --study NAME for a new study)"
        )
    have_metric = study.user_attrs.get("metric")
    if have_metric is None:
        study.set_user_attr("metric", metric)
    elif have_metric != metric:
        raise GnnrecError(
            f"study '{name}' exists and optimises {have_metric}; this sweep asks for {metric} "
            "(use --study NAME for a new study)"
        )
    return study


@dataclass(frozen=True)
class Counts:
    complete: int
    pruned: int
    failed: int
    running: int
    waiting: int

    @property
    def finished(self) -> int:
        """Trials that count towards ``--trials``: COMPLETE and PRUNED."""
        return self.complete + self.pruned


def count_trials(study: Any) -> Counts:
    from optuna.trial import TrialState

    states = [t.state for t in study.get_trials(deepcopy=False)]
    return Counts(
        complete=states.count(TrialState.COMPLETE),
        pruned=states.count(TrialState.PRUNED),
        failed=states.count(TrialState.FAIL),
        running=states.count(TrialState.RUNNING),
        waiting=states.count(TrialState.WAITING),
    )


def _process_alive(pid: int, started: datetime | None) -> bool:
    """Whether ``pid`` is a live process that existed when the trial started."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        # A PID reused by a later process is not our worker (1 s slack for clock rounding).
        return started is None or proc.create_time() <= started.timestamp() + 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def is_interrupted(trial: Any) -> bool:
    """A FAIL trial that did not fail on its own (its worker died or was interrupted)."""
    from optuna.trial import TrialState

    return trial.state == TrialState.FAIL and "error" not in trial.user_attrs


def recover_interrupted(study: Any, *, retry: bool = True) -> list[int]:
    """Fail the RUNNING trials whose worker is gone; queue interrupted trials once more.

    Args:
        study: the study.
        retry: enqueue the parameters of interrupted trials that were not retried yet.

    Returns:
        Numbers of the trials failed by this call.
    """
    import optuna
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # heartbeat: workers on other machines

    host = socket.gethostname()
    failed: list[int] = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.user_attrs.get("worker_host") != host or "worker_pid" not in t.user_attrs:
            continue  # another machine's worker (heartbeat), or a trial still starting up
        pid = int(t.user_attrs["worker_pid"])
        if pid == os.getpid() or _process_alive(pid, t.datetime_start):
            continue
        try:
            if study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                failed.append(t.number)
        except UpdateFinishedTrialError:
            pass  # another process got there first

    if retry:
        trials = study.get_trials(deepcopy=False)
        retried = {t.user_attrs.get("retry_of") for t in trials}
        for t in trials:
            if is_interrupted(t) and t.number not in retried and t.params:
                study.enqueue_trial(dict(t.params), user_attrs={"retry_of": t.number})
    return failed
