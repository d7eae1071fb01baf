"""``train.refit``: after early stopping, a fresh model trains on training + validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gnnrec.config import SplitConfig, load_config
from gnnrec.data.splits import make_split
from gnnrec.data.types import EXCLUDED, TEST, TRAIN, VALID
from gnnrec.errors import ConfigError
from gnnrec.eval.evaluator import Evaluator
from gnnrec.graph.build import build_train_data
from gnnrec.models import build_model
from gnnrec.runner import prepare_data, refit_split, run
from gnnrec.train.trainer import Trainer
from gnnrec.utils.seed import seed_everything
from tests.helpers import make_table

ROOT = Path(__file__).resolve().parents[2]
SMALL = [
    "data.synthetic.num_users=60",
    "data.synthetic.num_items=80",
    "data.synthetic.num_categories=5",
    "data.synthetic.events_per_user=12",
    "train.epochs=4",
    "train.patience=0",
    "train.batch_size=128",
    "model.params.dim=8",
    "eval.beyond_accuracy=false",
]


def given_table():  # type: ignore[no-untyped-def]
    return make_table(
        users=[0, 0, 0, 0, 0, 1, 1, 1, 1],
        items=[0, 1, 2, 0, 3, 0, 1, 1, 2],
        behaviors=["buy", "buy", "buy", "view", "buy", "buy", "buy", "view", "view"],
        ts=[1, 2, 3, 4, 9, 1, 2, 3, 9],
        given=["train", "train", "train", "train", "test", "train", "train", "train", "test"],
    )


@pytest.mark.parametrize("context", ["exclude", "keep"])
def test_refit_split_of_a_carved_given_split_is_the_uncarved_one(context: str) -> None:
    table = given_table()
    cfg = load_config(ROOT / "experiments/mf_bpr-synthetic.yaml", [])
    cfg = cfg.model_copy(
        update={"split": SplitConfig(mode="given", ratios=(0.25, 0.5, 0.25), valid_context=context)}
    )
    plain = make_split(table, SplitConfig(mode="given", valid_from_train=False), 0).assign
    for seed in range(4):
        split = make_split(table, cfg.split, seed)
        assert (split.assign == VALID).sum() == 3
        refit = refit_split(table, split, cfg)
        # carved buys and, under `exclude`, their views are training events again
        assert refit.assign.tolist() == plain.tolist() == [0, 0, 0, 0, 2, 0, 0, 0, -1]
        assert refit.info["refit"] is True


def test_refit_split_of_a_random_split_moves_valid_to_train() -> None:
    table = make_table(
        users=[0] * 6 + [1] * 6,
        items=[0, 1, 2, 3, 4, 0, 0, 1, 2, 3, 4, 5],
        behaviors=["buy"] * 5 + ["view"] + ["buy"] * 6,
    )
    cfg = load_config(ROOT / "experiments/mf_bpr-synthetic.yaml", ["split.ratios=[0.5,0.25,0.25]"])
    split = make_split(table, cfg.split, 0)
    a = split.assign
    assert (a == VALID).any() and (a == TEST).any()
    r = refit_split(table, split, cfg).assign
    assert (r[a == VALID] == TRAIN).all()
    keep = a != VALID
    assert (r[keep] == a[keep]).all()  # TEST and EXCLUDED rows are unchanged
    assert (r == EXCLUDED).sum() == (a == EXCLUDED).sum()


def test_refit_needs_a_split_whose_validation_can_rejoin_training() -> None:
    with pytest.raises(ConfigError, match="train.refit needs split.mode 'random' or 'given'"):
        load_config(ROOT / "experiments/mf_bpr-synthetic.yaml", ["train.refit=true", "split.mode=temporal"])
    with pytest.raises(ConfigError, match="valid_carve 'pairs'"):
        load_config(
            ROOT / "experiments/mf_bpr-synthetic.yaml",
            ["train.refit=true", "split.mode=given", "split.valid_carve=last"],
        )


def test_refit_run_equals_a_fresh_model_trained_on_train_plus_valid(tmp_path: Path) -> None:
    cfg = load_config(ROOT / "experiments/mf_bpr-synthetic.yaml", [*SMALL, "train.refit=true"])
    result = run(cfg, tmp_path / "run", progress=False)
    m = json.loads((result.run_dir / "metrics.json").read_text())
    best = m["best_epoch"]
    assert 1 <= best <= 4
    assert m["refit"]["epochs"] == best
    prepared = prepare_data(cfg)
    n_valid = int((prepared.split.assign == VALID).sum())
    assert n_valid > 0 and m["refit"]["train_pairs_added"] == n_valid
    saved = np.load(result.run_dir / "split.npz")["assign"]
    assert not (saved == VALID).any()
    assert (saved[prepared.split.assign == VALID] == TRAIN).all()
    assert set(m["refit"]["selected_model_test"]) == set(m["test"])

    # the same recipe by hand: the refit split, a fresh seeded model, `best` epochs
    split = refit_split(prepared.table, prepared.split, cfg)
    data = build_train_data(prepared.table, split, cfg.graph, cfg.train.positives)
    gen = seed_everything(cfg.seed)
    model = build_model(cfg.model, data.meta)
    train_cfg = cfg.train.model_copy(update={"epochs": best, "refit": False})
    Trainer(train_cfg, torch.device("cpu"), gen, progress=False).fit(model, data, None)
    model.eval()
    with torch.no_grad():
        ev = Evaluator(cfg.eval.ks, cfg.eval.metrics, cfg.eval.batch_size, torch.device("cpu"))
        test = ev.evaluate(model, model.encode(data), prepared.test).metrics
    assert test == pytest.approx(m["test"], abs=1e-12)
    saved_state = torch.load(result.run_dir / "model.pt")
    for k, v in model.state_dict().items():
        assert torch.equal(saved_state[k], v)
