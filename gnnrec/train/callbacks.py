"""Trainer callbacks: the hook protocol, TensorBoard logging, and the stop signal.

A callback sees each epoch's logs (``loss`` and the validation metrics of that epoch) and
the final :class:`~gnnrec.train.trainer.FitResult`. Raising :class:`StopTraining` from
``on_epoch_end`` ends training after that epoch, as early stopping does (the best weights are
still restored); an Optuna pruning hook uses it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gnnrec.train.trainer import FitResult


class StopTraining(Exception):
    """Raised by a callback to stop training after the current epoch."""


class Callback:
    """Base class of trainer callbacks; every hook is a no-op by default."""

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Called after each epoch (1-based; 0 for the single validation of an untrained or
        non-trainable model). ``logs`` has ``loss`` (when trained) and the epoch's
        validation metrics (when validated)."""

    def on_fit_end(self, result: FitResult) -> None:
        """Called once when ``fit`` returns normally."""


def _hparam_value(v: Any) -> int | float | str | bool:
    """TensorBoard's hparams plugin takes only scalars; other values are shown as text."""
    if isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


class TensorBoardCallback(Callback):
    """Writes ``train/loss`` and ``valid/<metric>`` scalars per epoch to ``log_dir``.

    Args:
        log_dir: directory of the event files (created if missing).

    Example:
        >>> tb = TensorBoardCallback("runs/exp/tb")          # doctest: +SKIP
        >>> result = Trainer(cfg, dev, gen, callbacks=[tb]).fit(model, data, validate)
        >>> tb.write_hparams({"lr": 1e-3}, {"hparam/best_ndcg@20": result.best_valid["ndcg@20"]})
        >>> tb.close()
    """

    def __init__(self, log_dir: str | Path) -> None:
        from torch.utils.tensorboard import SummaryWriter  # heavy import, only when used

        self.log_dir = Path(log_dir)
        self.writer: Any = SummaryWriter(log_dir=str(self.log_dir))
        self._closed = False

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        for key, value in logs.items():
            tag = f"train/{key}" if key in ("loss", "lr") else f"valid/{key}"
            self.writer.add_scalar(tag, float(value), epoch)

    def on_fit_end(self, result: FitResult) -> None:
        self.writer.flush()

    def write_hparams(self, hparams: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
        """Record the run's hyper-parameters with its final metrics (TensorBoard HPARAMS tab).

        Args:
            hparams: flat name → value mapping (non-scalar values are written as text).
            metrics: final metrics, written as scalars under their names as given (NaN
                values dropped); prefix them (e.g. ``hparam/test_ndcg@20``) to keep them
                apart from the per-epoch ``valid/...`` curves.
        """
        hp = {str(k): _hparam_value(v) for k, v in hparams.items()}
        mt = {str(k): float(v) for k, v in metrics.items() if not math.isnan(float(v))}
        # run_name="." keeps the hparams event file next to the scalars instead of a
        # timestamped sub-directory, so one run is one TensorBoard run.
        self.writer.add_hparams(hp, mt, run_name=".")
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file (idempotent)."""
        if not self._closed:
            self.writer.flush()
            self.writer.close()
            self._closed = True
