"""One generic training loop for every trainable :class:`~gnnrec.models.base.Recommender`.

The loop knows nothing about individual models: each step draws a batch of training
positives and uniform negatives, calls ``model.encode(data)`` and ``model.loss(...)``, and
takes an Adam step. A model with a ``train_batches(data, batch_size, generator)`` method
(the sequential models: prefix → next-item examples) draws its own batches instead, and its
``loss`` accepts them. Validation, early stopping on ``train.monitor`` (higher is better),
restoring the best weights and callbacks are shared by all models. Non-trainable models
(``trainable = False``) are only prepared and validated once.

Checkpoints (``train.checkpoint_every: n``): every ``n`` epochs, and when training ends, the
trainer writes ``<checkpoint_dir>/checkpoint.pt`` atomically (a temporary file, then
``os.replace``): model, optimizer and scheduler states, the generator and torch's global RNG
states, the epoch, the history, the best epoch's metrics and weights, the training seconds so
far, and why training stopped (if it did). With ``train.resume: true`` a later fit with the
same configuration (``epochs``, ``time_budget_min``, ``time_budget_clock``,
``checkpoint_every`` and ``resume`` may differ) loads it and continues after that epoch; on CPU
the result is bit-identical to an uninterrupted run. A run that had finished stays finished,
except one stopped by its time budget when resumed with a larger budget (it continues). ``gnnrec run CONFIG --out RUN_DIR --set train.resume=true`` resumes the
run in ``RUN_DIR``.

``train.time_budget_min`` stops training once the summed training time (validation and
monitoring excluded) reaches the budget; it is checked after each epoch. The clock is wall
time or, with ``train.time_budget_clock: cpu``, the process's CPU time (``time.process_time``;
with one torch thread: the seconds the process actually computed, which on a shared machine
excludes waiting for a core or being paused). Both are logged per epoch (``train_s``,
``train_cpu_s``).

A callback with a method ``on_epoch_model(epoch, model, data, logs)`` is a *monitor*: it is
called after each epoch (model in eval mode, under ``torch.no_grad()``), before
``on_epoch_end``, may add entries to ``logs`` (they go into the history), and its time is not
training time (e.g. a test-set learning curve in ``benchmarks/reproduce_gowalla.py``).
"""

from __future__ import annotations

import inspect
import logging
import math
import os
import pickle
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from gnnrec.config import TrainConfig
from gnnrec.data.sampling import (
    BehaviorNegativeSampler,
    UniformNegativeSampler,
    UserUniformPairs,
    pairs_for_epoch,
)
from gnnrec.errors import ConfigError, GnnrecError
from gnnrec.graph.data import TrainData, check_behaviors
from gnnrec.models.base import EmbDict, PairBatch, Recommender
from gnnrec.train.callbacks import Callback, StopTraining

__all__ = ["CHECKPOINT_NAME", "Callback", "FitResult", "StopTraining", "Trainer", "ValidateFn"]

log = logging.getLogger("gnnrec")

#: file name of the checkpoint in the checkpoint directory (the run directory)
CHECKPOINT_NAME = "checkpoint.pt"
#: train settings that may change between a checkpoint and its resumption
_RESUMABLE_CHANGES = ("epochs", "time_budget_min", "time_budget_clock", "checkpoint_every", "resume")

#: ``validate(model, emb) -> {metric: value}``; called with the model in eval mode and
#: embeddings computed under ``torch.no_grad()``.
ValidateFn = Callable[[Recommender, EmbDict], dict[str, float]]


@dataclass
class FitResult:
    """What :meth:`Trainer.fit` did.

    Attributes:
        best_epoch: epoch whose weights the model holds at the end (the best validated one;
            the last one without validation; 0 when no training step was run).
        epochs: epochs actually run.
        history: one dict per epoch: ``epoch``, ``loss`` and, on validated epochs, the
            validation metrics (epoch 0 holds the single validation of an untrained model).
        best_valid: validation metrics of ``best_epoch`` (empty without validation).
        fit_s: wall-clock seconds of the whole fit (prepare, training and validation).
        epoch_s: mean training seconds per epoch, validation excluded (0 when none ran).
        stopped_early: training ended before ``train.epochs`` (patience or a callback).
        stop_reason: why the loop ended at ``epochs``: ``"patience"``,
            ``"callback: <message>"`` (a :class:`StopTraining`), ``"time budget"``
            (``train.time_budget_min``), or ``None`` (ran out of epochs). Set even when the
            stop fell on the last epoch (``stopped_early`` False).
        train_s: summed training seconds (validation and monitors excluded), including the
            epochs before a resumed checkpoint.
        train_cpu_s: the same in process CPU seconds.
        resumed_from: the checkpoint epoch this fit continued from (0 = started fresh).
    """

    best_epoch: int
    epochs: int
    history: list[dict[str, float]] = field(default_factory=list)
    best_valid: dict[str, float] = field(default_factory=dict)
    fit_s: float = 0.0
    epoch_s: float = 0.0
    stopped_early: bool = False
    stop_reason: str | None = None
    train_s: float = 0.0
    resumed_from: int = 0
    train_cpu_s: float = 0.0


def _same_device(a: torch.device, b: torch.device) -> bool:
    if a.type != b.type:
        return False
    if a.type != "cuda":
        return True
    ia = torch.cuda.current_device() if a.index is None else a.index
    ib = torch.cuda.current_device() if b.index is None else b.index
    return ia == ib


class Trainer:
    """Train any :class:`Recommender` with mini-batch Adam on sampled negatives.

    Args:
        cfg: the ``train`` section (epochs, batch size, lr, loss, negatives, patience, ...).
        device: where the model and data live during training.
        generator: CPU (or ``device``) generator for shuffling and negative sampling; with a
            CPU generator and a CUDA device, a CUDA generator is seeded from it, so the run
            is still determined by the seed.
        callbacks: hooks called after each epoch and at the end (and monitors, see the
            module docstring).
        progress: show a tqdm bar over epochs (loss and monitored metric).
        checkpoint_dir: where ``checkpoint.pt`` is written (``train.checkpoint_every``) and
            read (``train.resume``); the runner passes the run directory. ``None`` with
            either option set is a :class:`ConfigError`.

    Example:
        >>> gen = seed_everything(0)                                  # doctest: +SKIP
        >>> result = Trainer(cfg.train, resolve_device("auto"), gen).fit(model, data, validate)
        >>> result.best_epoch, result.best_valid["ndcg@20"]
    """

    def __init__(
        self,
        cfg: TrainConfig,
        device: torch.device,
        generator: torch.Generator,
        callbacks: Sequence[Callback] = (),
        progress: bool = True,
        checkpoint_dir: str | Path | None = None,
    ) -> None:
        self.cfg = cfg
        self.device = torch.device(device)
        self.generator = generator
        self.callbacks = list(callbacks)
        self.progress = progress
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)

    # ------------------------------------------------------------------ helpers
    def _device_generator(self) -> torch.Generator:
        if self.generator.device.type == self.device.type:
            return self.generator
        # Sampling on the device needs a generator there; derive its seed from ours.
        seed = int(torch.randint(0, 2**62, (1,), generator=self.generator))
        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed)
        return gen

    def _validate(self, model: Recommender, data: TrainData, validate: ValidateFn) -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            emb = model.encode(data)
            metrics = {k: float(v) for k, v in validate(model, emb).items()}
        return metrics

    def _monitor(self, metrics: dict[str, float]) -> float:
        if self.cfg.monitor not in metrics:
            raise GnnrecError(
                f"train.monitor '{self.cfg.monitor}' is not among the validation metrics "
                f"{sorted(metrics)}; set train.monitor to one of them"
            )
        return metrics[self.cfg.monitor]

    def _callbacks_epoch_end(self, epoch: int, logs: dict[str, float]) -> str | None:
        """Run every callback (all of them, even after a stop request); return the first
        stop message, if any."""
        stop: str | None = None
        for cb in self.callbacks:
            try:
                cb.on_epoch_end(epoch, dict(logs))
            except StopTraining as exc:
                if stop is None:
                    stop = f"callback: {exc}" if str(exc) else f"callback: {type(cb).__name__}"
        return stop

    def _finish(self, result: FitResult) -> FitResult:
        for cb in self.callbacks:
            cb.on_fit_end(result)
        return result

    @staticmethod
    def _pair_batches(
        pos_index: torch.Tensor,
        sampler: UniformNegativeSampler | BehaviorNegativeSampler,
        gen: torch.Generator,
        batch_size: int,
        num_negatives: int,
        shared: bool | str = False,
        user_pairs: UserUniformPairs | None = None,
    ) -> Iterator[PairBatch]:
        """The default epoch: shuffled training positives with uniform negatives (per pair,
        or one pool ``[1, n]`` per batch when ``shared``; ``shared="in_batch"``: the pool is
        the positive items of the batch's first ``n`` pairs, a popularity-distributed sample
        since the pairs are shuffled). With ``user_pairs`` the epoch's pairs are drawn
        user-first (``train.pair_sampling: users``) instead of permuted."""
        perm = pairs_for_epoch(pos_index, gen) if user_pairs is None else user_pairs.draw(pos_index.shape[1], gen)
        for start in range(0, pos_index.shape[1], batch_size):
            pairs = pos_index[:, perm[start : start + batch_size]]
            user, pos = pairs[0], pairs[1]
            if shared == "in_batch":
                neg = pos[:num_negatives].unsqueeze(0)
            elif shared:
                neg = sampler.sample_shared(num_negatives)
            else:
                neg = sampler.sample(user, num_negatives)
            yield PairBatch(user, pos, neg)

    def _behavior_sampler(
        self, model: Recommender, data: TrainData, base: UniformNegativeSampler
    ) -> BehaviorNegativeSampler:
        """``train.behavior_negatives``: the uniform sampler with a share of behaviour
        negatives (training edges of those behaviours that are not positives)."""
        cfg = self.cfg
        name = type(model).__name__
        if cfg.neg_sampling != "per_pair" or hasattr(model, "train_batches"):
            raise ConfigError(
                f"train.behavior_negatives needs per-pair negatives from the trainer (train.neg_sampling "
                f"'per_pair', a model without its own batches), got '{cfg.neg_sampling}' with {name}"
            )
        behaviors = check_behaviors(cfg.behavior_negatives, data.meta, "train.behavior_negatives")
        aux = data.interaction_pairs(behaviors)
        sampler = BehaviorNegativeSampler(base, aux, model.meta.num_users, cfg.behavior_negative_share)
        log.info("train.behavior_negatives %s: %r", list(cfg.behavior_negatives), sampler)
        return sampler

    def _loss_fn(self, model: Recommender) -> Callable[[EmbDict, PairBatch], torch.Tensor]:
        """``model.loss`` bound to ``train.loss`` (and ``train.temperature`` where used);
        checks that the model supports the configured loss options."""
        from gnnrec.losses import TEMPERATURE_LOSSES

        cfg = self.cfg
        name = type(model).__name__
        if cfg.neg_sampling != "per_pair" and (
            not getattr(model, "supports_shared_negatives", False) or hasattr(model, "train_batches")
        ):
            raise ConfigError(f"train.neg_sampling: '{cfg.neg_sampling}' is not supported by {name}; use 'per_pair'")
        if cfg.loss in TEMPERATURE_LOSSES:
            if "temperature" not in inspect.signature(model.loss).parameters:
                raise ConfigError(
                    f"train.loss: '{cfg.loss}' (with train.temperature) is not supported by {name}; "
                    "use bpr or bce"
                )
            temperature = cfg.temperature
            return lambda emb, batch: model.loss(emb, batch, cfg.loss, temperature=temperature)
        return lambda emb, batch: model.loss(emb, batch, cfg.loss)

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint_path(self) -> Path:
        if self.checkpoint_dir is None:
            raise ConfigError(
                "train.checkpoint_every / train.resume need a checkpoint directory (the run "
                "directory); this trainer was created without one"
            )
        return self.checkpoint_dir / CHECKPOINT_NAME

    def _fingerprint(self, model: Recommender) -> dict[str, Any]:
        """What must match between a checkpoint and the fit resuming it."""
        train = {k: v for k, v in self.cfg.model_dump(mode="json").items() if k not in _RESUMABLE_CHANGES}
        shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
        return {"model": type(model).__name__, "train": train, "shapes": shapes}

    def _save_checkpoint(self, state: dict[str, Any]) -> Path:
        """Write ``state`` atomically: a reader sees the old or the new file, never half."""
        path = self._checkpoint_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)
        return path

    def _load_checkpoint(self, model: Recommender) -> dict[str, Any] | None:
        path = self._checkpoint_path()
        if not path.exists():
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
            # a truncated/foreign file: say which file, not a pickle trace
            raise GnnrecError(f"{path}: cannot read the checkpoint ({type(exc).__name__}: {exc})") from None
        want, got = self._fingerprint(model), state.get("fingerprint", {})
        old_train = got.get("train", {})
        # settings the checkpoint does not know (added to TrainConfig since) are not compared
        diff = [k for k in want["train"] if k in old_train and want["train"][k] != old_train[k]]
        same_model = want["model"] == got.get("model") and want["shapes"] == got.get("shapes")
        if diff or not same_model:
            if diff:
                parts = [f"{k} (checkpoint {old_train.get(k)!r}, now {want['train'][k]!r})" for k in diff]
                what = "train settings differ: " + ", ".join(parts)
            else:
                what = f"model differs (checkpoint: {got.get('model')!r} with parameter shapes {got.get('shapes')})"
            raise GnnrecError(
                f"{path}: the checkpoint does not belong to this configuration ({what}); "
                "use another run directory or train.resume=false"
            )
        return state

    # ------------------------------------------------------------------ fit
    def fit(self, model: Recommender, data: TrainData, validate: ValidateFn | None = None) -> FitResult:
        """Prepare, train and select the best epoch of ``model``.

        Args:
            model: any registered recommender.
            data: training data (moved to the trainer's device when needed).
            validate: ``validate(model, emb) -> metrics``; early stopping and best-epoch
                selection use ``metrics[cfg.monitor]`` (higher is better). ``None``: no
                validation, the last weights are kept.

        Returns:
            A :class:`FitResult`; the model holds the best (or last) weights.

        Raises:
            GnnrecError: the loss became NaN/inf, the monitored metric is missing, or there
                are no training positives.
        """
        cfg = self.cfg
        t_fit = time.perf_counter()
        model.to(self.device)
        if not _same_device(data.device, self.device):
            data = data.to(self.device)
        model.prepare(data)

        if not model.trainable or cfg.epochs == 0:
            # Nothing to optimise: one validation of the model as it is (epoch 0).
            metrics = self._validate(model, data, validate) if validate is not None else {}
            model.eval()
            stop = self._callbacks_epoch_end(0, metrics)
            result = FitResult(
                best_epoch=0,
                epochs=0,
                history=[{"epoch": 0, **metrics}],
                best_valid=metrics,
                fit_s=time.perf_counter() - t_fit,
                stop_reason=stop,
            )
            return self._finish(result)

        pos_index = data.pos_index
        num_pos = pos_index.shape[1]
        if num_pos == 0:
            raise GnnrecError(
                "no training positives: nothing to train on (check the split and train.positives)"
            )
        gen = self._device_generator()
        # cold-start splits restrict negatives to items with a training event (graph.build)
        sampler: UniformNegativeSampler | BehaviorNegativeSampler = UniformNegativeSampler(
            model.meta.num_items, pos_index, gen, candidates=data.cache.get("negative_items")
        )
        if cfg.behavior_negatives:
            sampler = self._behavior_sampler(model, data, sampler)
        optimizer = torch.optim.Adam(
            model.parameters(),
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            **getattr(model, "optimizer_options", dict)(),  # e.g. {"fused": True} (SR-GNN, LightGCN)
        )
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        if cfg.lr_decay_every is not None:
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_decay_every, gamma=cfg.lr_decay)
        elif cfg.lr_decay_at:
            scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(cfg.lr_decay_at), gamma=cfg.lr_decay)
        loss_fn = self._loss_fn(model)
        if cfg.pair_sampling != "pairs" and hasattr(model, "train_batches"):
            raise ConfigError(
                f"train.pair_sampling: '{cfg.pair_sampling}' is not supported by {type(model).__name__}, "
                "which draws its own training examples; use 'pairs'"
            )
        user_pairs = UserUniformPairs(pos_index) if cfg.pair_sampling == "users" else None
        shared: bool | str = "in_batch" if cfg.neg_sampling == "in_batch" else cfg.neg_sampling == "shared"
        budget_s = None if cfg.time_budget_min is None else cfg.time_budget_min * 60.0
        monitors = [cb for cb in self.callbacks if callable(getattr(cb, "on_epoch_model", None))]

        history: list[dict[str, float]] = []
        best_value = -math.inf
        best_epoch = 0
        best_valid: dict[str, float] = {}
        best_state: dict[str, torch.Tensor] | None = None
        train_seconds = 0.0
        train_cpu = 0.0
        stop_reason: str | None = None
        epoch = 0
        start = 1
        ckpt = self._load_checkpoint(model) if cfg.resume else None
        if ckpt is not None:
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            if scheduler is not None and ckpt["scheduler"] is not None:
                scheduler.load_state_dict(ckpt["scheduler"])
            gen.set_state(ckpt["generator"])
            if gen is not self.generator:
                self.generator.set_state(ckpt["base_generator"])
            torch.set_rng_state(ckpt["torch_rng"])
            history = list(ckpt["history"])
            best_value, best_epoch, best_valid = ckpt["best_value"], ckpt["best_epoch"], ckpt["best_valid"]
            best_state = ckpt["best_state"]
            train_seconds = float(ckpt["train_seconds"])
            train_cpu = float(ckpt.get("train_cpu", 0.0))
            stop_reason = ckpt["stop_reason"]
            epoch = int(ckpt["epoch"])
            if stop_reason == "time budget":
                used = train_cpu if cfg.time_budget_clock == "cpu" else train_seconds
                if budget_s is None or used < budget_s:
                    stop_reason = None  # resumed with a larger (or no) budget: keep training
            start = epoch + 1 if stop_reason is None else cfg.epochs + 1  # a finished run stays finished
        resumed_from = epoch

        def checkpoint() -> None:
            self._save_checkpoint(
                {
                    "fingerprint": self._fingerprint(model),
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": None if scheduler is None else scheduler.state_dict(),
                    "generator": gen.get_state(),
                    "base_generator": self.generator.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "history": history,
                    "best_value": best_value,
                    "best_epoch": best_epoch,
                    "best_valid": best_valid,
                    "best_state": best_state,
                    "train_seconds": train_seconds,
                    "train_cpu": train_cpu,
                    "stop_reason": stop_reason,
                }
            )

        bar = tqdm(
            range(start, cfg.epochs + 1), desc="train", unit="epoch", disable=not self.progress, leave=False
        )
        for epoch in bar:
            model.train()
            t_epoch = time.perf_counter()
            c_epoch = time.process_time()
            total = torch.zeros((), device=self.device)
            seen = 0
            # A model may draw its own batches (``train_batches(data, batch_size, generator)``,
            # e.g. next-item examples of sequential models); its loss accepts them. Batches
            # carry ``user`` (one entry per example) for the loss average.
            own = getattr(model, "train_batches", None)
            batches = (
                own(data, cfg.batch_size, gen)
                if own is not None
                else self._pair_batches(
                    pos_index, sampler, gen, cfg.batch_size, cfg.num_negatives, shared, user_pairs
                )
            )
            for batch in batches:
                emb = model.encode(data)
                loss = loss_fn(emb, batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                # accumulate on the device: no host sync per step
                total = total + loss.detach() * batch.user.shape[0]
                seen += batch.user.shape[0]
            epoch_loss = float(total) / max(seen, 1)  # one sync per epoch (also ends CUDA timing)
            train_seconds += time.perf_counter() - t_epoch
            train_cpu += time.process_time() - c_epoch
            if not math.isfinite(epoch_loss):
                raise GnnrecError(
                    f"training loss became {epoch_loss} in epoch {epoch} (lr={cfg.lr}); "
                    "try a lower train.lr, set train.grad_clip, or increase regularisation"
                )
            logs: dict[str, float] = {
                "loss": epoch_loss,
                "lr": optimizer.param_groups[0]["lr"],
                "train_s": train_seconds,
                "train_cpu_s": train_cpu,
            }
            if scheduler is not None:
                scheduler.step()  # the lr of the next epoch

            validated = improved = False
            if validate is not None and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs):
                metrics = self._validate(model, data, validate)
                validated = True
                logs.update(metrics)
                value = self._monitor(metrics)
                if value > best_value:  # strictly better; NaN never is
                    best_value, best_epoch, best_valid, improved = value, epoch, metrics, True
                    # a CPU copy: the snapshot must not alias parameters Adam keeps updating
                    best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            if monitors:
                model.eval()
                with torch.no_grad():
                    for mon in monitors:
                        mon.on_epoch_model(epoch, model, data, logs)  # type: ignore[attr-defined]
            history.append({"epoch": epoch, **logs})
            if self.progress:
                post = {"loss": f"{epoch_loss:.4f}"}
                if cfg.monitor in logs:
                    post[cfg.monitor] = f"{logs[cfg.monitor]:.4f}"
                bar.set_postfix(post)

            stop_reason = self._callbacks_epoch_end(epoch, logs)
            # patience counts epochs, but only a validation can show "no improvement"
            if (
                stop_reason is None
                and validated
                and cfg.patience > 0
                and not improved
                and best_state is not None
                and epoch - best_epoch >= cfg.patience
            ):
                stop_reason = "patience"
            used = train_cpu if cfg.time_budget_clock == "cpu" else train_seconds
            if stop_reason is None and budget_s is not None and used >= budget_s:
                stop_reason = "time budget"
            if cfg.checkpoint_every is not None and (
                epoch % cfg.checkpoint_every == 0 or stop_reason is not None or epoch == cfg.epochs
            ):
                checkpoint()  # after the stop decision, so a resumed finished run stays finished
            if stop_reason is not None:
                break
        bar.close()

        if best_state is not None:
            model.load_state_dict(best_state)
        else:  # no validation (or every monitored value NaN): keep the last weights
            best_epoch = epoch
        model.eval()
        result = FitResult(
            best_epoch=best_epoch,
            epochs=epoch,
            history=history,
            best_valid=best_valid,
            fit_s=time.perf_counter() - t_fit,
            epoch_s=train_seconds / max(1, epoch),
            stopped_early=stop_reason is not None and epoch < cfg.epochs,
            stop_reason=stop_reason,
            train_s=train_seconds,
            resumed_from=resumed_from,
            train_cpu_s=train_cpu,
        )
        return self._finish(result)
