"""The sweep block: typed parsing, up-front validation with exact messages, trial configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from gnnrec.cli import main
from gnnrec.config import config_from_dict
from gnnrec.errors import ConfigError
from gnnrec.sweep.space import SearchSpace, check_path, set_path
from tests.sweep.conftest import write_config

MF_KEYS = "dim, init, init_std, reg"


def space_of(cfg: dict[str, Any], config_dir: Path | None = None) -> SearchSpace:
    return SearchSpace.from_config(config_from_dict(cfg), config_dir)


def with_sweep(cfg: dict[str, Any], **changes: Any) -> dict[str, Any]:
    cfg["sweep"].update(changes)
    return cfg


# ---------------------------------------------------------------- schema (config.py)
@pytest.mark.parametrize(
    ("sweep", "message"),
    [
        ({"paramz": {}}, "sweep.paramz: unknown key"),
        ({}, "sweep: Value error, a sweep needs 'params' or a 'hook'"),
        (
            {"params": {"train.lr": {"type": "float", "low": "abc", "high": 1}}},
            "sweep.params.train.lr.low: Input should be a valid number, unable to parse string as a number",
        ),
        (
            {"params": {"train.lr": {"type": "uniform", "low": 0, "high": 1}}},
            "sweep.params.train.lr.type: Input should be 'float', 'int' or 'categorical'",
        ),
        (
            {"params": {"train.lr": {"type": "float", "low": 0.1, "high": 0.01}}},
            "sweep.params.train.lr: Value error, low must be less than high, got low=0.1 high=0.01",
        ),
        (
            {"params": {"train.lr": {"type": "float", "low": 0, "high": 1, "log": True}}},
            "sweep.params.train.lr: Value error, log scale needs low > 0, got low=0.0",
        ),
        (
            {"params": {"train.lr": {"type": "float", "low": 0.1, "high": 1, "log": True, "step": 0.1}}},
            "sweep.params.train.lr: Value error, log and step cannot be combined",
        ),
        (
            {"params": {"train.epochs": {"type": "int", "low": 1.5, "high": 4}}},
            "sweep.params.train.epochs: Value error, int needs integer 'low', 'high' and 'step'",
        ),
        (
            {"params": {"model.params.dim": {"type": "categorical", "choices": []}}},
            "sweep.params.model.params.dim: Value error, categorical needs a non-empty 'choices' list",
        ),
        (
            {"params": {"model.params.dim": {"type": "categorical", "choices": [8], "low": 1}}},
            "sweep.params.model.params.dim: Value error, categorical takes only 'choices' (no low/high/step/log)",
        ),
        (
            {"params": {"eval.ks": {"type": "categorical", "choices": [[10], [20]]}}},
            "sweep.params.eval.ks: Value error, choices must be numbers, strings, booleans or null, got [10]",
        ),
        (
            {"params": {"train.lr": {"type": "float", "low": 0.1, "high": 1, "choices": [1]}}},
            "sweep.params.train.lr: Value error, float takes 'low' and 'high', not 'choices'",
        ),
        (
            {"params": {"train.lr": {"type": "float", "low": 0.1}}},
            "sweep.params.train.lr: Value error, float needs 'low' and 'high'",
        ),
        (
            {"params": {"train.lr": {"type": "float", "low": 0.1, "high": 1, "scale": "log"}}},
            "sweep.params.train.lr.scale: unknown key",
        ),
        ({"hook": "not a hook"}, "sweep.hook: Value error, expected 'module:function', got 'not a hook'"),
        (
            {"hook": "m:f", "pruner": "mean"},
            "sweep.pruner.type: Input should be 'none', 'median' or 'hyperband'",
        ),
        ({"hook": "m:f", "trials": 0}, "sweep.trials: Input should be greater than or equal to 1"),
    ],
)
def test_schema_errors_name_the_key(sweep: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict({"sweep": sweep})
    assert str(err.value) == message


def test_schema_parses_types_and_shorthand() -> None:
    cfg = config_from_dict(
        {
            "sweep": {
                "pruner": "hyperband",
                "params": {
                    "train.lr": {"type": "float", "low": "1e-4", "high": 0.1, "log": True},
                    "train.batch_size": {"type": "int", "low": 64, "high": 512, "step": 64},
                },
            }
        }
    )
    assert cfg.sweep is not None
    assert cfg.sweep.pruner.type == "hyperband"
    assert cfg.sweep.params["train.lr"].low == 1e-4  # YAML reads 1e-4 as a string; pydantic parses it
    assert cfg.sweep.params["train.batch_size"].step == 64
    assert cfg.sweep.direction == "maximize" and cfg.sweep.sampler == "tpe"


# ---------------------------------------------------------------- paths against the schema
@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            "train.lrr",
            (
                "unknown config key 'lrr' in train (known: batch_size, behavior_negative_share, "
                "behavior_negatives, checkpoint_every, epochs, eval_every, "
                "grad_clip, loss, lr, lr_decay, lr_decay_at, lr_decay_every, monitor, neg_sampling, num_negatives, "
                "pair_sampling, patience, "
                "positives, refit, resume, temperature, time_budget_clock, time_budget_min, weight_decay)"
            ),
        ),
        ("model.params.dimm", f"unknown config key 'dimm' in model.params of mf_bpr (known: {MF_KEYS})"),
        ("train.lr.x", "'train.lr' is a value, not a section"),
        ("data.columns.user.x", "'data.columns.user' is not a section"),
        ("compare", "'compare' cannot be swept (a trial runs `model` only, without a sweep block)"),
        ("sweep.trials", "'sweep' cannot be swept (a trial runs `model` only, without a sweep block)"),
        ("train..lr", "'train..lr' is not a dotted config path"),
    ],
)
def test_check_path_errors(path: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        check_path(path, ["mf_bpr"])
    assert str(err.value) == message


@pytest.mark.parametrize(
    "path",
    [
        "train.lr",
        "seed",
        "data.synthetic.num_users",
        "data.columns.user",
        "model.params.reg",
        "model.name",
        "eval.ks",
    ],
)
def test_check_path_accepts(path: str) -> None:
    check_path(path, ["mf_bpr"])


def test_unknown_top_level_path_lists_the_sections(tiny_cfg: dict[str, Any]) -> None:
    tiny_cfg["sweep"]["params"] = {"trian.lr": {"type": "float", "low": 0.1, "high": 1}}
    with pytest.raises(ConfigError) as err:
        space_of(tiny_cfg)
    msg = str(err.value)
    assert msg.startswith("sweep.params.trian.lr: unknown config key 'trian' in the top level (known: ")
    assert "train" in msg and "model" in msg


# ---------------------------------------------------------------- values, metric, fixed, hook
def test_invalid_choice_is_caught_before_any_trial(tiny_cfg: dict[str, Any]) -> None:
    tiny_cfg["sweep"]["params"]["model.params.dim"] = {"type": "categorical", "choices": [8, 0]}
    with pytest.raises(ConfigError) as err:
        space_of(tiny_cfg)
    assert str(err.value) == (
        "sweep.params.model.params.dim: 0 gives an invalid config: "
        "model.params.dim: Input should be greater than or equal to 1"
    )


def test_invalid_bound_of_a_core_value(tiny_cfg: dict[str, Any]) -> None:
    tiny_cfg["sweep"]["params"] = {"train.batch_size": {"type": "int", "low": 0, "high": 8}}
    with pytest.raises(ConfigError) as err:
        space_of(tiny_cfg)
    assert str(err.value) == (
        "sweep.params.train.batch_size: 0 gives an invalid config: "
        "train.batch_size: Input should be greater than or equal to 1"
    )


def test_metric_must_be_evaluated(tiny_cfg: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as err:
        space_of(with_sweep(tiny_cfg, metric="ndcg@20"))
    assert (
        str(err.value) == "sweep.metric: 'ndcg@20' is not an evaluated metric (choose one of "
        "['recall@10', 'ndcg@10'])"
    )


def test_fixed_paths_and_values_are_checked(tiny_cfg: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as err:
        space_of(with_sweep(tiny_cfg, fixed={"train.epoch": 3}))
    assert str(err.value).startswith("sweep.fixed.train.epoch: unknown config key 'epoch' in train (known: ")
    with pytest.raises(ConfigError) as err:
        space_of(with_sweep(tiny_cfg, fixed={"train.epochs": -1}))
    assert str(err.value) == (
        "sweep.fixed: the config with these values is invalid: train.epochs: Input should be greater than or equal to 0"
    )


def test_hook_import_errors(tiny_cfg: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        space_of(with_sweep(tiny_cfg, hook="no_such_module_xyz:f"), tmp_path)
    assert (
        str(err.value)
        == "sweep.hook: cannot import module 'no_such_module_xyz': No module named 'no_such_module_xyz'"
    )
    (tmp_path / "myhooks_a.py").write_text("def other(trial, cfg):\n    pass\n")
    with pytest.raises(ConfigError) as err:
        space_of(with_sweep(tiny_cfg, hook="myhooks_a:space"), tmp_path)
    assert str(err.value) == "sweep.hook: module 'myhooks_a' has no function 'space'"


def test_fixed_applies_and_base_has_no_compare_or_sweep(tiny_cfg: dict[str, Any]) -> None:
    tiny_cfg["compare"] = [{"name": "pop"}]
    space = space_of(with_sweep(tiny_cfg, fixed={"train.epochs": 5, "data.synthetic.num_users": 30}))
    assert space.base["train"]["epochs"] == 5
    assert space.base["data"]["synthetic"]["num_users"] == 30
    assert space.base["compare"] == [] and space.base["sweep"] is None
    assert space.metric == "ndcg@10" and space.direction == "maximize"


def test_trial_config_from_fixed_trial(tiny_cfg: dict[str, Any]) -> None:
    space = space_of(tiny_cfg)
    d = space.trial_config(optuna.trial.FixedTrial({"train.lr": 0.02, "model.params.dim": 4}))
    assert d["train"]["lr"] == 0.02
    assert d["model"] == {"name": "mf_bpr", "params": {"dim": 4}}
    cfg = config_from_dict(d)  # a trial's config is a plain valid config
    assert cfg.sweep is None and cfg.compare == ()


def test_conditional_hook(tiny_cfg: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "myhooks_b.py").write_text(
        "def space(trial, cfg):\n"
        "    loss = trial.suggest_categorical('train.loss', ['bpr', 'bce'])\n"
        "    cfg['train']['loss'] = loss\n"
        "    if loss == 'bce':\n"
        "        cfg['train']['num_negatives'] = trial.suggest_int('train.num_negatives', 1, 4)\n"
    )
    space = space_of(with_sweep(tiny_cfg, hook="myhooks_b:space"), tmp_path)
    bpr = space.trial_config(
        optuna.trial.FixedTrial({"train.lr": 0.01, "model.params.dim": 8, "train.loss": "bpr"})
    )
    assert bpr["train"]["loss"] == "bpr" and bpr["train"]["num_negatives"] == 1
    bce = space.trial_config(
        optuna.trial.FixedTrial(
            {"train.lr": 0.01, "model.params.dim": 8, "train.loss": "bce", "train.num_negatives": 3}
        )
    )
    assert bce["train"]["loss"] == "bce" and bce["train"]["num_negatives"] == 3


def test_set_path_creates_sections_and_refuses_values() -> None:
    d: dict[str, Any] = {"train": {"lr": 0.1}}
    set_path(d, "model.params.dim", 8)
    set_path(d, "train.lr", 1e-05)
    assert d == {"train": {"lr": 1e-05}, "model": {"params": {"dim": 8}}}
    with pytest.raises(ConfigError, match="'train.lr' is not a section"):
        set_path(d, "train.lr.x", 1)


# ---------------------------------------------------------------- CLI errors
def test_cli_without_sweep_block(
    tmp_path: Path, tiny_cfg: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    del tiny_cfg["sweep"]
    path = write_config(tmp_path / "c.yaml", tiny_cfg)
    assert main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {path}: no `sweep:` block (see experiments/quickstart.yaml for an example)"]


def test_cli_bad_path_is_one_error_line(
    tmp_path: Path, tiny_cfg: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    tiny_cfg["sweep"]["params"]["model.params.dimm"] = {"type": "int", "low": 2, "high": 4}
    path = write_config(tmp_path / "c.yaml", tiny_cfg)
    assert main(["sweep", str(path), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        (
            f"error: {path}: sweep.params.model.params.dimm: unknown config key 'dimm' in model.params of mf_bpr "
            f"(known: {MF_KEYS})"
        )
    ]
    assert not (tmp_path / "s").exists()  # nothing started


def test_cli_schema_error_names_file_and_key(
    tmp_path: Path, tiny_cfg: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    tiny_cfg["sweep"]["direction"] = "up"
    path = write_config(tmp_path / "c.yaml", tiny_cfg)
    assert main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {path}: sweep.direction: Input should be 'maximize' or 'minimize'"]


@pytest.mark.parametrize(("flag", "value"), [("--trials", "0"), ("--workers", "0")])
def test_cli_counts_must_be_positive(
    tmp_path: Path, tiny_cfg: dict[str, Any], capsys: pytest.CaptureFixture[str], flag: str, value: str
) -> None:
    path = write_config(tmp_path / "c.yaml", tiny_cfg)
    assert main(["sweep", str(path), flag, value]) == 2
    assert capsys.readouterr().err.strip() == f"error: {flag} must be at least 1, got 0"
