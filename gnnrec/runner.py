"""``run(cfg)``: the config-to-results recipe every command and benchmark goes through.

seed → load dataset → validate → interaction table → split → training graph → model →
train (early stopping on validation) → full-ranking test evaluation → run directory.

The run directory contract (later tools rely on it)::

    config.yaml            resolved config
    metrics.json           see :func:`run_model` (valid/test metrics, timing, data, dropped_rows)
    per_user_test.parquet  per-user test metrics (user index, user id, one column per metric)
    per_user_valid.parquet per-user validation metrics of the restored best model
    history.csv            per-epoch loss and validation metrics
    model.pt               best weights (state_dict) for later analysis commands
                           (with train.refit: the refit model's)
    split.npz              split assignment per table row (reproducibility, explanations;
                           with train.refit: the refit split, validation pairs in training)
    vocab/                 users.csv, items.csv, categories.csv (index → id)
    tb/                    TensorBoard events: train/loss, valid/<metric>, hparams
    env.json               commit, package versions, machine
    run.log                the log of the run
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from gnnrec.config import ExperimentConfig, ModelSpec, dump_config
from gnnrec.data.types import EXCLUDED, TEST, TRAIN, VALID, InteractionTable, Split
from gnnrec.eval.evaluator import EvalTargets, Evaluator, build_targets
from gnnrec.graph.data import TrainData
from gnnrec.utils.rundir import make_run_dir
from gnnrec.utils.runinfo import environment_info, peak_rss_mb

log = logging.getLogger("gnnrec")


@dataclass
class PreparedData:
    """Everything up to the training graph, shared by all models of one comparison."""

    table: InteractionTable
    split: Split
    data: TrainData
    valid: EvalTargets
    test: EvalTargets
    timing: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        a = self.split.assign
        return {
            "users": self.table.num_users,
            "items": self.table.num_items,
            "categories": self.table.num_categories,
            "events": len(self.table),
            "train": int((a == TRAIN).sum()),
            "valid": int((a == VALID).sum()),
            "test": int((a == TEST).sum()),
            "excluded": int((a == EXCLUDED).sum()),
            "behaviors": list(self.table.behaviors),
            "target_behavior": self.table.behaviors[self.split.target],
            "split": self.split.mode,
        }


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]


def prepare_data(cfg: ExperimentConfig) -> PreparedData:
    """Load, validate, index and split the configured data and build the training graph."""
    from gnnrec.data.datasets import load_dataset
    from gnnrec.data.interactions import build_interactions
    from gnnrec.data.schema import validate_log
    from gnnrec.data.splits import make_split

    timing: dict[str, float] = {}
    t = time.perf_counter()
    raw = load_dataset(cfg.data, seed=cfg.seed)
    timing["load_s"] = time.perf_counter() - t
    t = time.perf_counter()
    valid_log = validate_log(raw, cfg.data)
    table = build_interactions(valid_log, cfg.data)
    timing["table_s"] = time.perf_counter() - t
    for reason, count in sorted(table.dropped.items()):
        log.warning("dropped %d rows: %s", count, reason)
    t = time.perf_counter()
    split = make_split(table, cfg.split, cfg.seed)
    data = _train_data(cfg, table, split)
    valid = build_targets(table, split, "valid", cfg.eval.mask)
    test = build_targets(table, split, "test", cfg.eval.mask)
    timing["split_graph_s"] = time.perf_counter() - t
    prepared = PreparedData(table, split, data, valid, test, timing)
    s = prepared.summary()
    log.info(
        "data %s: %d events, %d users, %d items, %d categories; split %s: train %d, valid %d, "
        "test %d, excluded %d",
        cfg.data.dataset,
        s["events"],
        s["users"],
        s["items"],
        s["categories"],
        s["split"],
        s["train"],
        s["valid"],
        s["test"],
        s["excluded"],
    )
    return prepared


def _train_data(cfg: ExperimentConfig, table: InteractionTable, split: Split) -> TrainData:
    """The training graph of ``split`` with the configured item features attached."""
    from gnnrec.features import attach_item_features
    from gnnrec.graph.build import build_train_data

    data = build_train_data(table, split, cfg.graph, cfg.train.positives)
    attach_item_features(cfg.features, cfg.data.dataset, table, split, data)  # no-op when unset
    return data


class _FileLog:
    """Attach a file handler writing the ``gnnrec`` log into the run directory."""

    def __init__(self, path: Path) -> None:
        self.handler = logging.FileHandler(path)
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def __enter__(self) -> _FileLog:
        logging.getLogger("gnnrec").addHandler(self.handler)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("gnnrec").removeHandler(self.handler)
        self.handler.close()


def _per_user_frame(table: InteractionTable, per_user: pl.DataFrame) -> pl.DataFrame:
    ids = table.user_ids[per_user["user"].to_numpy()].astype(str)
    return per_user.with_columns(pl.Series("user_id", ids)).select(["user", "user_id", *per_user.columns[1:]])


def run_model(
    cfg: ExperimentConfig,
    prepared: PreparedData,
    run_dir: Path,
    *,
    progress: bool = True,
    callbacks: Sequence[Any] = (),
) -> RunResult:
    """Train and evaluate ``cfg.model`` on prepared data; write the run directory."""
    from gnnrec.models import build_model
    from gnnrec.train.callbacks import TensorBoardCallback
    from gnnrec.train.trainer import Trainer
    from gnnrec.utils.device import resolve_device
    from gnnrec.utils.seed import seed_everything

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(dump_config(cfg))
    (run_dir / "env.json").write_text(json.dumps(environment_info(), indent=2))
    with _FileLog(run_dir / "run.log"):
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        if cfg.cpu_malloc == "tuned":
            from gnnrec.utils.malloc import tune_malloc

            log.info("glibc malloc thresholds raised (cpu_malloc: tuned): %s", tune_malloc())
        generator = seed_everything(cfg.seed)
        device = resolve_device(cfg.device)
        prepared.table.save_vocab(run_dir / "vocab")
        np.savez_compressed(run_dir / "split.npz", assign=prepared.split.assign, target=prepared.split.target)
        model = build_model(cfg.model, prepared.data.meta)
        from gnnrec.models.cold import check_cold_start

        check_cold_start(model, cfg.model.name, prepared.split)  # cold splits: refuse random scoring
        log.info("model %s on %s: %r", cfg.model.name, device, model)
        evaluator = Evaluator(cfg.eval.ks, cfg.eval.metrics, cfg.eval.batch_size, device)

        def validate(m: Any, emb: Any) -> dict[str, float]:
            return evaluator.evaluate(m, emb, prepared.valid).metrics

        has_valid = len(prepared.valid.users) > 0
        if not has_valid:
            log.warning("no validation users: training runs all %d epochs without early stopping", cfg.train.epochs)
        tb = TensorBoardCallback(run_dir / "tb")
        trainer = Trainer(
            cfg.train, device, generator, callbacks=[tb, *callbacks], progress=progress, checkpoint_dir=run_dir
        )
        fit = trainer.fit(model, prepared.data, validate if has_valid else None)

        data = prepared.data.to(device) if prepared.data.device != device else prepared.data
        model.eval()
        valid_res = None
        refit_info: dict[str, Any] | None = None
        saved_split = prepared.split
        if cfg.train.refit and has_valid and fit.best_epoch > 0:
            with torch.no_grad():  # the selected model's; its test is reported, never used to choose
                emb = model.encode(data)
                valid_res = evaluator.evaluate(model, emb, prepared.valid)
                selected_test = evaluator.evaluate(model, emb, prepared.test).metrics
            saved_split = refit_split(prepared.table, prepared.split, cfg)
            model, data, refit_fit = _refit(cfg, prepared, saved_split, fit.best_epoch, device, run_dir, progress)
            refit_info = {
                "epochs": refit_fit.epochs,
                "fit_s": refit_fit.fit_s,
                "train_pairs_added": int(((saved_split.assign == TRAIN) & (prepared.split.assign != TRAIN)).sum()),
                "selected_model_test": selected_test,
            }
        elif cfg.train.refit:
            log.warning("train.refit: no validation-selected epoch (no validation set or no epoch); no refit")
        if saved_split is not prepared.split:
            np.savez_compressed(run_dir / "split.npz", assign=saved_split.assign, target=saved_split.target)
        model.eval()
        with torch.no_grad():
            t = time.perf_counter()
            emb = model.encode(data)
            test_res = evaluator.evaluate(model, emb, prepared.test, progress=progress)
            eval_s = time.perf_counter() - t
            if valid_res is None and has_valid:
                valid_res = evaluator.evaluate(model, emb, prepared.valid)

        _per_user_frame(prepared.table, test_res.per_user).write_parquet(run_dir / "per_user_test.parquet")
        if valid_res is not None:
            _per_user_frame(prepared.table, valid_res.per_user).write_parquet(run_dir / "per_user_valid.parquet")
        pl.DataFrame(fit.history).write_csv(run_dir / "history.csv") if fit.history else None
        torch.save(model.state_dict(), run_dir / "model.pt")

        metrics: dict[str, Any] = {
            "model": cfg.model.name,
            "dataset": cfg.data.dataset,
            "valid": valid_res.metrics if valid_res is not None else {},
            "test": test_res.metrics,
            "best_epoch": fit.best_epoch,
            "epochs": fit.epochs,
            "stopped_early": fit.stopped_early,
            "timing": {
                "fit_s": fit.fit_s,
                "epoch_s": fit.epoch_s,
                "eval_s": eval_s,
                **prepared.timing,
            },
            **({"refit": refit_info} if refit_info is not None else {}),
            "peak_rss_mb": peak_rss_mb(),
            "device": str(device),
            "seed": cfg.seed,
            "data": prepared.summary(),
            "eval_users": {"valid": len(prepared.valid.users), "test": len(prepared.test.users)},
            "dropped_rows": dict(prepared.table.dropped),
        }
        if cfg.eval.beyond_accuracy or cfg.rerank.strategy != "none":
            from gnnrec.explore.evaluate import (
                beyond_accuracy_report,  # coverage/ILD/novelty; rerank
            )

            metrics.update(beyond_accuracy_report(cfg, model, emb, prepared))
        from gnnrec.eval.buckets import (
            evaluation_buckets,  # per history-length / drift bucket (TRAIN-only)
        )

        metrics["buckets"] = evaluation_buckets(prepared.table, prepared.split, test_res.per_user, cfg.drift)
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        tb.write_hparams(_hparams(cfg), {f"hparam/test_{k}": v for k, v in test_res.metrics.items()})
        tb.close()
        log.info("run directory: %s", run_dir)
    return RunResult(run_dir, metrics)


def refit_split(table: InteractionTable, split: Split, cfg: ExperimentConfig) -> Split:
    """The split of ``train.refit``: the validation pairs rejoin training.

    ``given`` with validation carved from training (``split.valid_from_train``): the given
    split rebuilt without the carve, so the carved pairs and any context events the carve
    excluded are training events again. Otherwise (``random``, or a given split with its own
    validation rows) every VALID row becomes TRAIN; events the split EXCLUDED stay out (under
    ``random`` the other behaviours of a held-out pair). TEST rows never change.

    Raises:
        ConfigError: a split mode other than ``random`` or ``given``.
    """
    from gnnrec.data.splits import make_split
    from gnnrec.errors import ConfigError

    if split.mode not in ("random", "given"):
        raise ConfigError(f"train.refit needs split.mode 'random' or 'given', got '{split.mode}'")
    if split.mode == "given" and split.info.get("valid_carved"):
        refit = make_split(table, cfg.split.model_copy(update={"valid_from_train": False}), cfg.seed)
        assert ((refit.assign == TEST) == (split.assign == TEST)).all()
        return Split(refit.assign, refit.target, refit.mode, {**refit.info, "refit": True})
    assign = split.assign.copy()
    assign[assign == VALID] = TRAIN
    return Split(assign, split.target, split.mode, {**split.info, "refit": True})


def _refit(
    cfg: ExperimentConfig,
    prepared: PreparedData,
    split: Split,
    epochs: int,
    device: torch.device,
    run_dir: Path,
    progress: bool,
) -> tuple[Any, TrainData, Any]:
    """Train a fresh model (seeded as the first) on ``split``'s training events for
    ``epochs`` epochs, without validation; TensorBoard events under ``tb/refit``."""
    from gnnrec.models import build_model
    from gnnrec.train.callbacks import TensorBoardCallback
    from gnnrec.train.trainer import Trainer
    from gnnrec.utils.seed import seed_everything

    data = _train_data(cfg, prepared.table, split)
    log.info(
        "train.refit: a fresh model on training + validation (%d training events, %d before) for %d epochs",
        int((split.assign == TRAIN).sum()),
        int((prepared.split.assign == TRAIN).sum()),
        epochs,
    )
    generator = seed_everything(cfg.seed)
    model = build_model(cfg.model, data.meta)
    train_cfg = cfg.train.model_copy(update={"epochs": epochs, "refit": False, "resume": False})
    tb = TensorBoardCallback(run_dir / "tb" / "refit")
    trainer = Trainer(train_cfg, device, generator, callbacks=[tb], progress=progress, checkpoint_dir=run_dir / "refit")
    fit = trainer.fit(model, data, None)
    tb.close()
    data = data.to(device) if data.device != device else data
    return model, data, fit


def _hparams(cfg: ExperimentConfig) -> dict[str, Any]:
    hp: dict[str, Any] = {
        "model": cfg.model.name,
        "dataset": cfg.data.dataset,
        "lr": cfg.train.lr,
        "batch_size": cfg.train.batch_size,
        "loss": cfg.train.loss,
        "seed": cfg.seed,
    }
    for k, v in cfg.model.params.items():
        if isinstance(v, (int, float, str, bool)):
            hp[f"model.{k}"] = v
    return hp


def run(
    cfg: ExperimentConfig,
    out: str | Path | None = None,
    *,
    progress: bool = True,
    callbacks: Sequence[Any] = (),
    prepared: PreparedData | None = None,
) -> RunResult:
    """Run one experiment: ``out`` is the run directory (created), default a fresh
    ``<cfg.out_dir>/<cfg.name>-<timestamp>``."""
    run_dir = Path(out) if out is not None else make_run_dir(cfg.out_dir, cfg.name)
    run_dir.mkdir(parents=True, exist_ok=True)
    with _FileLog(run_dir / "run.log"):
        if prepared is None:
            prepared = prepare_data(cfg)
    return run_model(cfg, prepared, run_dir, progress=progress, callbacks=callbacks)


def with_model(cfg: ExperimentConfig, spec: ModelSpec) -> ExperimentConfig:
    """A copy of ``cfg`` with another model spec (used by comparisons and sweeps)."""
    return cfg.model_copy(update={"model": spec})
