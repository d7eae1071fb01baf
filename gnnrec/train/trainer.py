"""One generic training loop for every trainable :class:`~gnnrec.models.base.Recommender`.

The loop knows nothing about individual models: each step draws a batch of training
positives and uniform negatives, calls ``model.encode(data)`` and ``model.loss(...)``, and
takes an Adam step. A model with a ``train_batches(data, batch_size, generator)`` method
(the sequential models: prefix → next-item examples) draws its own batches instead, and its
``loss`` accepts them. Validation, early stopping on ``train.monitor`` (higher is better),
restoring the best weights and callbacks are shared by all models. Non-trainable models
(``trainable = False``) are only prepared and validated once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from gnnrec.config import TrainConfig
from gnnrec.data.sampling import UniformNegativeSampler, pairs_for_epoch
from gnnrec.errors import GnnrecError
from gnnrec.graph.data import TrainData
from gnnrec.models.base import EmbDict, PairBatch, Recommender
from gnnrec.train.callbacks import Callback, StopTraining

__all__ = ["Callback", "FitResult", "StopTraining", "Trainer", "ValidateFn"]

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
            ``"callback: <message>"`` (a :class:`StopTraining`), or ``None`` (ran out of
            epochs). Set even when the stop fell on the last epoch (``stopped_early`` False).
    """

    best_epoch: int
    epochs: int
    history: list[dict[str, float]] = field(default_factory=list)
    best_valid: dict[str, float] = field(default_factory=dict)
    fit_s: float = 0.0
    epoch_s: float = 0.0
    stopped_early: bool = False
    stop_reason: str | None = None


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
        callbacks: hooks called after each epoch and at the end.
        progress: show a tqdm bar over epochs (loss and monitored metric).

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
    ) -> None:
        self.cfg = cfg
        self.device = torch.device(device)
        self.generator = generator
        self.callbacks = list(callbacks)
        self.progress = progress

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
        sampler: UniformNegativeSampler,
        gen: torch.Generator,
        batch_size: int,
        num_negatives: int,
    ) -> Iterator[PairBatch]:
        """The default epoch: shuffled training positives with uniform negatives."""
        perm = pairs_for_epoch(pos_index, gen)
        for start in range(0, pos_index.shape[1], batch_size):
            pairs = pos_index[:, perm[start : start + batch_size]]
            user, pos = pairs[0], pairs[1]
            yield PairBatch(user, pos, sampler.sample(user, num_negatives))

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
        sampler = UniformNegativeSampler(
            model.meta.num_items, pos_index, gen, candidates=data.cache.get("negative_items")
        )
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        scheduler = (
            torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_decay_every, gamma=cfg.lr_decay)
            if cfg.lr_decay_every is not None
            else None
        )

        history: list[dict[str, float]] = []
        best_value = -math.inf
        best_epoch = 0
        best_valid: dict[str, float] = {}
        best_state: dict[str, torch.Tensor] | None = None
        train_seconds = 0.0
        stop_reason: str | None = None
        epoch = 0

        bar = tqdm(
            range(1, cfg.epochs + 1), desc="train", unit="epoch", disable=not self.progress, leave=False
        )
        for epoch in bar:
            model.train()
            t_epoch = time.perf_counter()
            total = torch.zeros((), device=self.device)
            seen = 0
            # A model may draw its own batches (``train_batches(data, batch_size, generator)``,
            # e.g. next-item examples of sequential models); its loss accepts them. Batches
            # carry ``user`` (one entry per example) for the loss average.
            own = getattr(model, "train_batches", None)
            batches = (
                own(data, cfg.batch_size, gen)
                if own is not None
                else self._pair_batches(pos_index, sampler, gen, cfg.batch_size, cfg.num_negatives)
            )
            for batch in batches:
                emb = model.encode(data)
                loss = model.loss(emb, batch, cfg.loss)
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
            if not math.isfinite(epoch_loss):
                raise GnnrecError(
                    f"training loss became {epoch_loss} in epoch {epoch} (lr={cfg.lr}); "
                    "try a lower train.lr, set train.grad_clip, or increase regularisation"
                )
            logs: dict[str, float] = {"loss": epoch_loss, "lr": optimizer.param_groups[0]["lr"]}
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
            history.append({"epoch": epoch, **logs})
            if self.progress:
                post = {"loss": f"{epoch_loss:.4f}"}
                if cfg.monitor in logs:
                    post[cfg.monitor] = f"{logs[cfg.monitor]:.4f}"
                bar.set_postfix(post)

            stop_reason = self._callbacks_epoch_end(epoch, logs)
            if stop_reason is not None:
                break
            # patience counts epochs, but only a validation can show "no improvement"
            if (
                validated
                and cfg.patience > 0
                and not improved
                and best_state is not None
                and epoch - best_epoch >= cfg.patience
            ):
                stop_reason = "patience"
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
        )
        return self._finish(result)
