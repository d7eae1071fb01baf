"""The Optuna pruning callback on hand-written report sequences, alone and inside the Trainer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from gnnrec.sweep.pruning import OptunaPruningCallback
from gnnrec.train.callbacks import StopTraining


def _study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Median of the earlier trials at the same step; prune from step 1 after one finished trial.
    return optuna.create_study(
        direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
    )


def _feed(trial: optuna.Trial, values: list[float | None]) -> OptunaPruningCallback:
    cb = OptunaPruningCallback(trial, "ndcg@20")
    for epoch, v in enumerate(values, 1):
        logs = {"loss": 1.0 / epoch} if v is None else {"loss": 1.0 / epoch, "ndcg@20": v}
        cb.on_epoch_end(epoch, logs)
    return cb


def test_good_trial_is_not_pruned_and_reports_validated_epochs_only() -> None:
    study = _study()
    first = study.ask()
    cb = _feed(first, [0.10, None, 0.30])  # epoch 2 not validated: nothing reported
    assert cb.reported == [(1, 0.10), (3, 0.30)]
    assert cb.pruned_epoch is None
    cb.raise_if_pruned()  # no-op
    study.tell(first, 0.30)
    assert study.trials[0].intermediate_values == {1: 0.10, 3: 0.30}


def test_worse_trial_is_pruned_at_the_first_step_below_the_median() -> None:
    study = _study()
    first = study.ask()
    _feed(first, [0.10, 0.20, 0.30])
    study.tell(first, 0.30)

    second = study.ask()
    cb = OptunaPruningCallback(second, "ndcg@20")
    cb.on_epoch_end(1, {"loss": 1.0, "ndcg@20": 0.15})  # above the first trial's 0.10: goes on
    with pytest.raises(StopTraining) as stop:
        cb.on_epoch_end(2, {"loss": 0.5, "ndcg@20": 0.05})  # below 0.20: pruned
    assert str(stop.value) == "pruned by Optuna at epoch 2 (ndcg@20=0.0500)"
    assert cb.pruned_epoch == 2
    with pytest.raises(optuna.TrialPruned, match="pruned at epoch 2"):
        cb.raise_if_pruned()


def test_non_finite_values_are_not_reported() -> None:
    study = _study()
    cb = _feed(study.ask(), [float("nan"), 0.2])
    assert cb.reported == [(2, 0.2)]


def test_pruned_objective_ends_as_pruned_state() -> None:
    study = _study()

    def objective(trial: optuna.Trial) -> float:
        values = [0.1, 0.2, 0.3] if trial.number == 0 else [0.01, 0.02, 0.03]
        cb = OptunaPruningCallback(trial, "ndcg@20")
        try:
            for epoch, v in enumerate(values, 1):
                cb.on_epoch_end(epoch, {"ndcg@20": v})
        except StopTraining:
            pass  # what the Trainer does: stop, finish the run
        cb.raise_if_pruned()
        return values[-1]

    study.optimize(objective, n_trials=2)
    assert [t.state for t in study.trials] == [
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.PRUNED,
    ]
    assert study.trials[1].intermediate_values == {1: 0.01}


def test_run_stops_on_prune_and_writes_a_complete_run_dir(tmp_path: Path, tiny_cfg: dict[str, Any]) -> None:
    """Inside the real Trainer and runner: training ends after the pruned epoch, the run
    directory is complete (the reason the callback stops instead of raising TrialPruned)."""
    from gnnrec.config import config_from_dict
    from gnnrec.runner import run

    class FakeTrial:
        def __init__(self) -> None:
            self.reports: list[tuple[float, int]] = []

        def report(self, value: float, step: int) -> None:
            self.reports.append((value, step))

        def should_prune(self) -> bool:
            return len(self.reports) >= 2

    tiny_cfg["sweep"] = None
    tiny_cfg["train"]["epochs"] = 6
    trial = FakeTrial()
    cb = OptunaPruningCallback(trial, "ndcg@10")
    result = run(config_from_dict(tiny_cfg), tmp_path / "run", progress=False, callbacks=[cb])
    assert [step for _, step in trial.reports] == [1, 2]
    assert cb.pruned_epoch == 2
    assert result.metrics["epochs"] == 2 and result.metrics["stopped_early"] is True
    assert (tmp_path / "run" / "metrics.json").is_file() and (tmp_path / "run" / "model.pt").is_file()
    with pytest.raises(optuna.TrialPruned):
        cb.raise_if_pruned()
