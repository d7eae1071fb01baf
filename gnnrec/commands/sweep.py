"""``gnnrec sweep CONFIG.yaml``: an Optuna hyper-parameter search over an experiment config.

    gnnrec sweep experiments/quickstart.yaml --trials 4
    gnnrec sweep experiments/quickstart.yaml --trials 40 --workers 2          # resumes, adds 36
    gnnrec sweep experiments/quickstart.yaml --storage postgresql://u@db/gnnrec --study qs

The search space is the config's ``sweep:`` block (:mod:`gnnrec.sweep.space`). ``--trials``
is the total of finished (complete + pruned) trials the study should hold: re-running
the same command resumes the study and only runs what is missing.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    """Add the ``sweep`` sub-command."""
    s = sub.add_parser(
        "sweep",
        help="tune an experiment's hyper-parameters with Optuna",
        description="Optuna search over the `sweep:` block of CONFIG.yaml (dotted config paths; TPE, "
        "median/Hyperband pruning on the per-epoch validation metric). Each trial is a normal run "
        "directory under the sweep directory; the study is stored in SQLite there (or --storage), so "
        "re-running the same command resumes it. Writes trials.csv, best_config.yaml (runnable with "
        "`gnnrec run`), Optuna plots, report.html and TensorBoard hparams.",
    )
    s.add_argument("config", help="experiment YAML with a `sweep:` block")
    s.add_argument(
        "--trials",
        type=int,
        metavar="N",
        help="finished trials the study should hold (default: sweep.trials)",
    )
    s.add_argument(
        "--workers", type=int, default=1, metavar="W", help="worker processes on this machine (default 1)"
    )
    s.add_argument(
        "--storage",
        metavar="URL",
        help="Optuna storage URL, e.g. postgresql://user@host/db to share a study between machines "
        "(default: sqlite:///<sweep dir>/study.db)",
    )
    s.add_argument("--study", metavar="NAME", help="study name (default: the config's name)")
    s.add_argument("--out", metavar="DIR", help="sweep directory (default: <out_dir>/sweeps/<study>)")
    s.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a config value, e.g. train.epochs=10"
    )
    s.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    from gnnrec.cli import _console
    from gnnrec.config import load_config
    from gnnrec.errors import ConfigError
    from gnnrec.sweep.outputs import top_table, write_outputs
    from gnnrec.sweep.space import SearchSpace
    from gnnrec.sweep.study import (
        count_trials,
        is_sqlite,
        make_storage,
        open_study,
        recover_interrupted,
        redact,
    )
    from gnnrec.sweep.worker import SweepJob, run_workers

    if args.trials is not None and args.trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {args.trials}")
    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    path = Path(args.config)
    cfg = load_config(path, list(args.set or []))
    try:
        space = SearchSpace.from_config(cfg, path.parent)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    assert cfg.sweep is not None
    console = _console()

    def say(text: str) -> None:  # plain text: no markup in paths, no wrapping of long lines
        console.print(text, soft_wrap=True, markup=False, highlight=False)

    study_name = args.study or cfg.name
    sweep_dir = Path(args.out) if args.out else Path(cfg.out_dir) / "sweeps" / study_name
    sweep_dir.mkdir(parents=True, exist_ok=True)
    storage_url = args.storage or f"sqlite:///{(sweep_dir / 'study.db').resolve()}"
    n_trials = args.trials if args.trials is not None else cfg.sweep.trials

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(make_storage(storage_url), study_name, direction=space.direction, metric=space.metric)
    failed = recover_interrupted(study)
    for number in failed:
        say(f"trial {number}: its worker is gone; marked FAIL, its parameters are queued again")
    before = count_trials(study)
    say(
        f"sweep '{study_name}': {n_trials} trials, {space.direction} valid {space.metric}; "
        f"{len(space.params)} parameters{' + hook' if space.hook else ''}; "
        f"{args.workers} worker(s); storage {redact(storage_url)}; directory {sweep_dir}"
    )
    if before.finished:
        say(
            f"resuming: {before.finished} finished trials ({before.complete} complete, {before.pruned} pruned), "
            f"{before.failed} failed"
        )
    if args.workers > 1 and is_sqlite(storage_url):
        say(
            f"note: {args.workers} workers share one SQLite file; writes are serialised (lock timeout "
            "applies). For many workers or several machines use --storage postgresql://..."
        )

    job = SweepJob(
        config=cfg.model_dump(mode="json"),
        config_dir=str(path.parent.resolve()),
        storage=storage_url,
        study=study_name,
        sweep_dir=str(sweep_dir.resolve()),
        n_trials=n_trials,
        workers=args.workers,
        verbose=bool(getattr(args, "verbose", False)),
    )
    try:
        run_workers(job, args.workers)
    finally:
        # Whatever happened, the outputs reflect every trial the storage holds.
        outputs = write_outputs(
            study, sweep_dir, metric=space.metric, storage=redact(storage_url), space=space
        )

    after = count_trials(study)
    console.print(top_table(study, space.metric, order=list(space.params)))
    say(
        f"{after.finished} finished trials ({after.complete} complete, {after.pruned} pruned), {after.failed} failed"
    )
    if outputs.best_config is not None:
        say(f"best trial {outputs.best_number}: valid {space.metric} = {outputs.best_value:.4f}")
        say(f"best config: {outputs.best_config}  (gnnrec run {outputs.best_config})")
    say(f"trials: {outputs.trials_csv}; report: {outputs.report_html}; tensorboard --logdir {outputs.tb_dir}")
    return 0
