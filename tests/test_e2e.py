"""End-to-end `gnnrec run` on synthetic data and (marked realdata) on the real datasets."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from gnnrec.cli import main
from tests.realdata import dataset_dir

ROOT = Path(__file__).resolve().parent.parent
TINY = [
    "data.synthetic.num_users=150",
    "data.synthetic.num_items=200",
    "data.synthetic.num_categories=8",
    "data.synthetic.events_per_user=30",
    "train.epochs=3",
    "train.batch_size=512",
]
TEST_KEYS = {f"{m}@{k}" for m in ("recall", "ndcg", "hit", "mrr", "precision") for k in (10, 20)}


def gnnrec(*args: str) -> int:
    return main(list(args))


def test_run_contract(tmp_path: Path) -> None:
    out = tmp_path / "run"
    sets = [x for s in TINY for x in ("--set", s)]
    code = gnnrec("run", str(ROOT / "experiments/mf_bpr-synthetic.yaml"), *sets, "--out", str(out), "-q")
    assert code == 0
    for name in ("config.yaml", "metrics.json", "per_user_test.parquet", "per_user_valid.parquet",
                 "history.csv", "model.pt", "split.npz", "env.json", "run.log", "vocab/users.csv"):
        assert (out / name).exists(), name
    m = json.loads((out / "metrics.json").read_text())
    assert TEST_KEYS <= set(m["test"])
    assert "ndcg@20" in m["valid"]
    assert {"fit_s", "epoch_s", "eval_s"} <= set(m["timing"])
    assert all(m["timing"][k] > 0 for k in ("fit_s", "epoch_s", "eval_s"))
    assert {"users", "items", "categories", "train", "valid", "test"} <= set(m["data"])
    assert m["data"]["users"] > 0 and m["data"]["test"] > 0
    assert m["epochs"] == 3 and 1 <= m["best_epoch"] <= 3
    assert m["peak_rss_mb"] > 0
    assert m["dropped_rows"] == {}
    per_user = pl.read_parquet(out / "per_user_test.parquet")
    assert per_user.height == m["eval_users"]["test"]
    assert abs(per_user["ndcg@20"].mean() - m["test"]["ndcg@20"]) < 1e-6
    # the resolved config reproduces the run's settings
    from gnnrec.config import load_config

    cfg = load_config(out / "config.yaml")
    assert cfg.train.epochs == 3 and cfg.data.synthetic.num_users == 150
    # TensorBoard: loss and validation metric per epoch
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out / "tb"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert "train/loss" in tags and "valid/ndcg@20" in tags
    assert len(acc.Scalars("train/loss")) == 3


def test_run_is_deterministic(tmp_path: Path) -> None:
    sets = [x for s in TINY for x in ("--set", s)]
    cfg = str(ROOT / "experiments/mf_bpr-synthetic.yaml")
    assert gnnrec("run", cfg, *sets, "--out", str(tmp_path / "a"), "-q") == 0
    assert gnnrec("run", cfg, *sets, "--out", str(tmp_path / "b"), "-q") == 0
    a = json.loads((tmp_path / "a/metrics.json").read_text())
    b = json.loads((tmp_path / "b/metrics.json").read_text())
    assert a["test"] == b["test"] and a["valid"] == b["valid"]


def test_compare_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sets = [x for s in TINY for x in ("--set", s)]
    code = gnnrec("run", str(ROOT / "experiments/quickstart.yaml"), *sets, "--out", str(tmp_path), "-q")
    assert code == 0
    out = capsys.readouterr().out
    for name in ("pop", "itemknn", "mf_bpr", "neumf"):
        assert (tmp_path / name / "metrics.json").exists()
        assert name in out
    table = pl.read_csv(tmp_path / "comparison.csv")
    assert table["model"].to_list() == ["pop", "itemknn", "mf_bpr", "neumf"]
    assert "recall@20" in table.columns and "ndcg@20" in table.columns
    # all models were evaluated on the same users (same split)
    users = {json.loads((tmp_path / n / "metrics.json").read_text())["eval_users"]["test"] for n in table["model"]}
    assert len(users) == 1


@pytest.mark.slow
def test_synthetic_has_learnable_signal(tmp_path: Path) -> None:
    """On the default simulator, MF must clearly beat popularity (the data carries signal)."""
    cfg = str(ROOT / "experiments/quickstart.yaml")
    code = gnnrec("run", cfg, "--set", "compare=[{name: pop}, {name: mf_bpr}]", "--out", str(tmp_path), "-q")
    assert code == 0
    table = {r["model"]: r for r in pl.read_csv(tmp_path / "comparison.csv").to_dicts()}
    assert table["mf_bpr"]["ndcg@20"] > 1.5 * table["pop"]["ndcg@20"]
    assert table["mf_bpr"]["recall@20"] > 1.5 * table["pop"]["recall@20"]


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("config", "folder", "extra"),
    [
        ("mf_bpr-ml-100k", "movielens-100k", ["train.epochs=2"]),
        ("itemknn-ml-100k", "movielens-100k", []),
        ("mf_bpr-taobao", "taobao-userbehavior", ["train.epochs=2"]),
        ("pop-taobao", "taobao-userbehavior", []),
        ("mf_bpr-tmall-mb", "tmall-mbcgcn", ["train.epochs=1"]),
    ],
)
def test_real_data_run(tmp_path: Path, config: str, folder: str, extra: list[str]) -> None:
    dataset_dir(folder)
    sets = [x for s in extra for x in ("--set", s)]
    code = gnnrec("run", str(ROOT / f"experiments/{config}.yaml"), *sets, "--out", str(tmp_path), "-q")
    assert code == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert TEST_KEYS <= set(m["test"])
    assert m["eval_users"]["test"] > 0
    assert 0.0 <= m["test"]["recall@20"] <= 1.0
    if config.endswith("taobao"):
        # out-of-range timestamps and the item with two categories are dropped and reported
        assert m["dropped_rows"].get("timestamp_out_of_range", 0) > 0
    if config == "mf_bpr-tmall-mb":
        assert m["data"]["users"] == 15449 and m["data"]["items"] == 11953
        assert m["eval_users"]["test"] == 15449
