"""Optuna pruning through the trainer's callback hook.

The :class:`~gnnrec.train.trainer.Trainer` hands every callback the epoch's logs, which
hold the validation metrics on validated epochs. :class:`OptunaPruningCallback` reports
the swept metric with ``trial.report(value, step=epoch)`` and asks ``trial.should_prune()``.

Why :class:`~gnnrec.train.callbacks.StopTraining` first and ``optuna.TrialPruned`` after:
raising ``TrialPruned`` straight from the hook would unwind through ``Trainer.fit`` and
``run_model`` and leave the trial's run directory half written (no metrics.json, no
model.pt, an open TensorBoard writer). Stopping training instead lets the run finish like
an early stop (best weights restored, everything written and closed); the objective then
calls :meth:`OptunaPruningCallback.raise_if_pruned`, which raises ``optuna.TrialPruned``
so Optuna records the trial as PRUNED.
"""

from __future__ import annotations

import math
from typing import Any

from gnnrec.train.callbacks import Callback, StopTraining


class OptunaPruningCallback(Callback):
    """Report ``metric`` to an Optuna trial each validated epoch; stop when pruned.

    Args:
        trial: an ``optuna.Trial`` (anything with ``report`` and ``should_prune``).
        metric: validation metric key in the epoch logs, e.g. ``ndcg@20``.

    Attributes:
        pruned_epoch: the epoch at which Optuna asked to prune, or ``None``.
        reported: ``(epoch, value)`` pairs reported so far.

    Example:
        >>> cb = OptunaPruningCallback(trial, "ndcg@20")              # doctest: +SKIP
        >>> run(cfg, run_dir, callbacks=[cb], prepared=prepared)
        >>> cb.raise_if_pruned()          # optuna.TrialPruned when the pruner said so
    """

    def __init__(self, trial: Any, metric: str) -> None:
        self.trial = trial
        self.metric = metric
        self.pruned_epoch: int | None = None
        self.reported: list[tuple[int, float]] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self.metric not in logs:
            return  # not a validated epoch (train.eval_every > 1)
        value = float(logs[self.metric])
        if not math.isfinite(value):
            return  # Optuna's pruners would compare against NaN; the trial fails later instead
        self.trial.report(value, step=epoch)
        self.reported.append((epoch, value))
        if self.trial.should_prune():
            self.pruned_epoch = epoch
            raise StopTraining(f"pruned by Optuna at epoch {epoch} ({self.metric}={value:.4f})")

    def raise_if_pruned(self) -> None:
        """Raise ``optuna.TrialPruned`` when the pruner stopped this trial."""
        if self.pruned_epoch is not None:
            import optuna

            raise optuna.TrialPruned(f"pruned at epoch {self.pruned_epoch}")
