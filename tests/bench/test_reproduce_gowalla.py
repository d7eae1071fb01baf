"""benchmarks/reproduce_gowalla.py: the test-curve monitor, the curve section and the PNG."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from gnnrec.eval.evaluator import EvalTargets, Evaluator

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rg():
    spec = importlib.util.spec_from_file_location("reproduce_gowalla", ROOT / "benchmarks" / "reproduce_gowalla.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["reproduce_gowalla"] = mod
    spec.loader.exec_module(mod)
    return mod


class Fixed(torch.nn.Module):
    """Scores: user u ranks item u first (identity embeddings)."""

    def encode(self, data):
        return {"user": torch.eye(3), "item": torch.eye(3)}

    def score_all(self, emb, users):
        return emb["user"][users] @ emb["item"].T


def targets(users: list[int]) -> EvalTargets:
    truth = sp.csr_matrix((np.ones(3, dtype=bool), ([0, 1, 2], [0, 1, 0])), shape=(3, 3))
    return EvalTargets(users=np.array(users, dtype=np.int64), truth=truth, exclude=None)


def test_test_curve_evaluates_every_interval_on_the_chosen_clock(rg) -> None:
    ev = Evaluator((1,), ("recall",), 8)
    curve = rg.TestCurve(ev, targets([0, 1, 2]), every_s=60, log=False, clock="cpu")
    for epoch, cpu in enumerate([10, 50, 61, 70, 200], start=1):
        logs = {"loss": 1.0, "train_s": 1000.0 + cpu, "train_cpu_s": float(cpu)}
        curve.on_epoch_model(epoch, Fixed(), None, logs)
    # epoch 1 (t=10 >= 0), then the first epoch past 60 s and past 120 s
    assert [p["epoch"] for p in curve.points] == [1, 3, 5]
    p = curve.points[0]
    assert p["train_min"] == pytest.approx(10 / 60) and p["train_wall_min"] == pytest.approx(1010 / 60)
    # users 0 and 1 hit their item at rank 1, user 2 (truth item 0) does not
    assert p["test_recall@1"] == pytest.approx(2 / 3) and p["users"] == 3
    sub = rg.TestCurve(ev, targets([0, 1, 2]), every_s=60, sample=2, log=False)
    assert sub.targets.users.shape == (2,)


def test_curve_section_and_png(rg, tmp_path: Path) -> None:
    rec = {
        "model": "lightgcn",
        "label": "lightgcn",
        "resolved_config": {"threads": 1, "train": {"loss": "softmax", "batch_size": 16384, "lr": 0.005,
                                                    "time_budget_clock": "cpu"}},
        "eval_users": {"test": 3},
        "machine": {"torch_threads": 1, "cpus": 2},
        "load_avg_before": [1.0, 1.0, 1.0],
        "load_avg_after": [2.0, 2.0, 2.0],
        "epochs": 2,
        "train_cpu_min": 1.0,
        "train_wall_min": 1.5,
        "curve_every_s": 300,
        "curve": [
            {"epoch": 1, "train_min": 0.5, "train_cpu_min": 0.5, "train_wall_min": 0.7, "loss": 2.0,
             "test_recall@20": 0.1, "test_ndcg@20": 0.05},
            {"epoch": 2, "train_min": 1.0, "train_cpu_min": 1.0, "train_wall_min": 1.5, "loss": 1.5,
             "test_recall@20": 0.2, "test_ndcg@20": 0.1},
        ],
    }
    text = "\n".join(rg._curve_section(rec))
    assert "| 2 | 1.0 | 1.5 | 1.5000 | 0.2000 | 0.1000 |" in text
    assert "monitoring only" in text
    png = rg.curve_png_path(tmp_path / "gowalla.md", "lightgcn[x=1]")
    assert png.name == "gowalla_lightgcn_x_1__curve.png"
    rg.plot_curve(rec, 0.1775, 0.1830, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_training_record_reads_the_curve_from_the_whole_history(rg, tmp_path: Path) -> None:
    (tmp_path / "history.csv").write_text(
        "epoch,loss,lr,train_s,train_cpu_s,test_recall@20,test_ndcg@20\n"
        "1,2.0,0.01,60.0,30.0,0.1,0.05\n"
        "2,1.5,0.01,120.0,60.0,,\n"
        "3,1.2,0.01,180.0,90.0,0.2,0.1\n"
    )
    curve = rg.TestCurve(Evaluator((1,), ("recall",), 8), targets([0]), every_s=60, log=False, clock="cpu")
    rec = rg._training_record(tmp_path, curve)
    assert rec["train_wall_min"] == 3.0 and rec["train_cpu_min"] == 1.5
    assert [(p["epoch"], p["train_min"], p["test_recall@20"]) for p in rec["curve"]] == [(1, 0.5, 0.1), (3, 1.5, 0.2)]
