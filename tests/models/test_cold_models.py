"""Cold-start models: capability check, pop_category (exact), content_mf / graphsage features."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from gnnrec.config import GraphConfig, ModelSpec
from gnnrec.data.types import Split
from gnnrec.errors import GnnrecError
from gnnrec.graph.build import build_train_data
from gnnrec.models import MODELS, build_model
from gnnrec.models.cold import check_cold_start, models_for
from tests.helpers import make_table


def _split(mode: str, k: int = 0) -> Split:
    info = {"cold_k": k} if mode == "cold_user" else {}
    return Split(assign=np.zeros(0, dtype=np.int8), target=0, mode=mode, info=info)


def test_declarations() -> None:
    assert MODELS.get("mf_bpr").cold_start == "none"
    assert MODELS.get("lightgcn").cold_start == "none"
    assert MODELS.get("pop").cold_start == "user"
    for name in ("pop_category", "graphsage", "content_mf"):
        assert MODELS.get(name).cold_start == "both"
    assert set(models_for("item")) >= {"pop_category", "graphsage", "content_mf"}
    assert "mf_bpr" not in models_for("item") and "pop" in models_for("user")


def test_check_cold_start_messages() -> None:
    with pytest.raises(
        GnnrecError,
        match="model 'mf_bpr' cannot score cold items: an item's embeddings are learned per ID",
    ):
        check_cold_start(MODELS.get("mf_bpr"), "mf_bpr", _split("cold_item"))
    with pytest.raises(
        GnnrecError,
        match=r"model 'lightgcn' cannot score cold users .*split.cold_k=0.*cold_k >= 1",
    ):
        check_cold_start(MODELS.get("lightgcn"), "lightgcn", _split("cold_user", 0))
    check_cold_start(MODELS.get("lightgcn"), "lightgcn", _split("cold_user", 3))  # k >= 1: fine
    check_cold_start(MODELS.get("graphsage"), "graphsage", _split("cold_item"))
    check_cold_start(MODELS.get("pop"), "pop", _split("cold_user", 0))
    check_cold_start(MODELS.get("mf_bpr"), "mf_bpr", _split("random"))


def _tiny_data():
    # u0 buys i0, i1 (category 0); u1 buys i1, i2; item 3 (category 1) has no training event
    table = make_table([0, 0, 1, 1], [0, 1, 1, 2], ["buy"] * 4, ts=[1, 2, 3, 4],
                       categories_per_item=[0, 0, 1, 1], num_users=3, num_items=4)  # fmt: skip
    split = Split(
        assign=np.zeros(4, dtype=np.int8),
        target=table.behavior_index("buy"),
        mode="random",
    )
    return table, build_train_data(table, split, GraphConfig())


def test_pop_category_exact() -> None:
    _, data = _tiny_data()
    model = build_model(ModelSpec(name="pop_category"), data.meta)
    model.prepare(data)
    emb = model.encode(data)
    scores = model.score_all(emb, torch.tensor([0, 1, 2]))
    # popularity: i0 1, i1 2, i2 1, cold i3 = mean of its category's warm items (i2) = 1
    logp = np.log1p([1.0, 2.0, 1.0, 1.0])
    pop = 0.01 * logp / (1 + math.log(3.0))
    expected = (
        np.array(
            [
                [1.0, 1.0, 0.0, 0.0],  # u0: all training pairs in category 0
                [0.5, 0.5, 0.5, 0.5],  # u1: one pair in each category
                [0.0, 0.0, 0.0, 0.0],  # u2: no training event -> global popularity only
            ]
        )
        + pop
    )
    np.testing.assert_allclose(scores.numpy(), expected, rtol=1e-6)
    pair = model.score(emb, torch.tensor([1, 0]), torch.tensor([3, 1]))
    np.testing.assert_allclose(pair.numpy(), [expected[1, 3], expected[0, 1]], rtol=1e-6)


def test_pop_category_without_prior_ranks_cold_item_last() -> None:
    _, data = _tiny_data()
    model = build_model(ModelSpec(name="pop_category", params={"cold_item_prior": False}), data.meta)
    model.prepare(data)
    s = model.score_all(model.encode(data), torch.tensor([2]))[0]
    assert float(s[3]) == 0.0 and float(s[1]) > float(s[0]) > 0


@pytest.mark.parametrize("fusion", [None, "sum", "concat", "gated"])
@pytest.mark.parametrize("name", ["content_mf", "graphsage"])
def test_feature_models_embed_cold_items_from_features(name: str, fusion: str | None) -> None:
    _, data = _tiny_data()
    if fusion is not None:
        data.cache["item_features"] = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0]])
        data.cache["item_feature_fusion"] = fusion
    torch.manual_seed(0)
    model = build_model(ModelSpec(name=name, params={"dim": 8}), data.meta)
    model.prepare(data)
    emb = model.encode(data)
    assert emb["user"].shape == (3, 8) and emb["item"].shape == (4, 8)
    scores = model.score_all(emb, torch.tensor([0, 2]))
    assert scores.shape == (2, 4) and torch.isfinite(scores).all()
    if fusion is not None:
        # items 2 and 3 share a category; only their features tell them apart
        assert not torch.allclose(emb["item"][2], emb["item"][3])
        # the fusion parameters are trained by the loss
        from gnnrec.models.base import PairBatch

        loss = model.loss(emb, PairBatch(torch.tensor([0]), torch.tensor([0]), torch.tensor([[3]])))
        loss.backward()
        fused = [p for n, p in model.named_parameters() if "fusion" in n or "feature_proj" in n]
        assert fused and any(p.grad is not None and p.grad.abs().sum() > 0 for p in fused)


def _write_config(tmp_path: Path, model: str, split: dict) -> Path:
    cfg = {
        "name": "cold",
        "threads": 1,
        "out_dir": str(tmp_path / "runs"),
        "data": {"dataset": "synthetic", "synthetic": {"num_users": 60, "num_items": 80, "num_categories": 5,
                                                       "events_per_user": 8}},
        "split": split,
        "model": {"name": model, "params": {"dim": 8}} if model != "pop_category" else {"name": model},
        "train": {"epochs": 1, "batch_size": 256},
    }  # fmt: skip
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_cli_refuses_cold_items_for_id_models(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gnnrec.cli import main

    path = _write_config(tmp_path, "mf_bpr", {"mode": "cold_item"})
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "cannot score cold items" in err[0]


def test_cli_cold_user_run_reports_buckets(tmp_path: Path) -> None:
    import json

    from gnnrec.cli import main

    path = _write_config(tmp_path, "pop_category", {"mode": "cold_user", "cold_k": 1})
    assert main(["run", str(path)]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert "1-2" in metrics["buckets"]["history_length"]
    assert metrics["data"]["split"] == "cold_user"


def test_negative_sampler_candidates() -> None:
    from gnnrec.data.sampling import UniformNegativeSampler

    g = torch.Generator().manual_seed(0)
    pos = torch.tensor([[0, 0, 1], [2, 5, 5]])
    s = UniformNegativeSampler(8, pos, g, candidates=torch.tensor([5, 2, 7, 3]))
    neg = s.sample(torch.tensor([0, 1] * 50), 4)
    u0 = neg[0::2].flatten().tolist()
    u1 = neg[1::2].flatten().tolist()
    assert set(u0) == {3, 7}  # candidates minus u0's positives 2, 5
    assert set(u1) == {2, 3, 7}


def test_cli_lightgcn_cold_user_override(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The documented check: a leave-last-out config run with --set split.mode=cold_user."""
    import json

    from gnnrec.cli import main

    path = _write_config(tmp_path, "lightgcn", {"mode": "leave_last_out"})
    assert main(["run", str(path), "--set", "split.mode=cold_user"]) == 0  # cold_k defaults to 3
    (run_dir,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["buckets"]["history_length"]) == {"0", "1-2", "3-5", "6-10", ">10"}
    capsys.readouterr()
    assert main(["run", str(path), "--set", "split.mode=cold_user", "--set", "split.cold_k=0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot score cold users" in err[0] and "pop_category" in err[0]
