"""Item side features: text embeddings and normalised numeric columns as node features.

A dataset reader that has an item table puts it in ``RawLog.meta["item_features"]``: a
polars frame with a String ``item`` column (raw item ids, as in the log) and any other
columns (``ml-100k``: ``title``, ``year``). The ``features:`` config section picks columns:

.. code-block:: yaml

    features:
      text_column: title          # embedded with all-MiniLM-L6-v2 (gnnrec[text]); cached
      numeric_columns: [year]     # z-normalised with statistics of TRAINING items only
      fusion: concat              # sum | concat | gated (gnnrec.features.fusion)

:func:`attach_item_features` builds the ``[num_items, F]`` float32 matrix (text block, then
one column per numeric column) and stores it in ``TrainData.cache["item_features"]`` with
the fusion mode in ``cache["item_feature_fusion"]``; models that read features
(``graphsage``, ``content_mf``) create their fusion layer in ``prepare``. Items without
text get a zero text block; a missing numeric value becomes 0 (the training mean) after
normalisation. Statistics use only items with a training event, so a held-out cold item's
values never shape the normalisation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import torch

from gnnrec.config import FeaturesConfig
from gnnrec.data.types import TRAIN, InteractionTable, Split
from gnnrec.errors import ConfigError
from gnnrec.features.text import Embedder, embed_texts
from gnnrec.graph.data import TrainData

__all__ = [
    "ITEM_TABLE_KEY",
    "attach_item_features",
    "build_item_features",
    "zscore_train",
]

#: key of the item table in ``RawLog.meta`` / ``InteractionTable.meta``
ITEM_TABLE_KEY = "item_features"


def zscore_train(values: np.ndarray, train_items: np.ndarray) -> np.ndarray:
    """Z-normalise one numeric column with the mean / std of the training items only.

    Args:
        values: float ``[num_items]``, NaN where unknown.
        train_items: bool ``[num_items]``, items with a training event.

    Returns:
        float32 ``[num_items]``: ``(v - mean) / std`` (std 0 or undefined → 1), NaN → 0.
    """
    ref = values[train_items & ~np.isnan(values)]
    mean = float(ref.mean()) if ref.size else 0.0
    std = float(ref.std()) if ref.size > 1 else 0.0
    out = (values - mean) / (std if std > 0 else 1.0)
    return np.nan_to_num(out, nan=0.0).astype(np.float32)


def _aligned(table: InteractionTable, frame: pl.DataFrame, dataset: str) -> pl.DataFrame:
    """The item table re-ordered to the interaction table's item index (missing rows null)."""
    if "item" not in frame.columns:
        raise ConfigError(f"dataset '{dataset}': its item table has no 'item' column")
    index = pl.DataFrame({"item": np.asarray(table.item_ids).astype(str)})
    right = frame.with_columns(pl.col("item").cast(pl.String)).unique(
        "item", keep="first", maintain_order=True
    )
    # explicit row index + sort: join(maintain_order=...) needs polars >= 1.19 (setup.cfg: >= 1.0)
    joined = index.with_row_index("_pos").join(right, on="item", how="left")
    return joined.sort("_pos").drop("_pos")


def build_item_features(
    cfg: FeaturesConfig,
    dataset: str,
    table: InteractionTable,
    train_items: np.ndarray,
    embedder: Embedder | None = None,
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """The item feature matrix of ``cfg`` (``None`` when no feature is configured).

    Args:
        cfg: the ``features`` section.
        dataset: dataset name (for messages and the text cache).
        table: the interaction table; its ``meta["item_features"]`` is read.
        train_items: bool ``[num_items]`` items with a training event (normalisation stats).
        embedder: text embedder (tests pass a fake one); ``None`` = the gnnrec[text] model.

    Returns:
        ``(float32 [num_items, F] or None, info)``; ``info`` names the blocks, the text cache
        file and how many items have text / numeric values.

    Raises:
        ConfigError: the dataset has no item table, or a configured column is absent or
            not numeric.
    """
    if cfg.text_column is None and not cfg.numeric_columns:
        return None, {}
    frame = table.meta.get(ITEM_TABLE_KEY)
    if frame is None:
        raise ConfigError(
            f"features: dataset '{dataset}' has no item table (no text or numeric item columns); "
            "remove features.text_column / features.numeric_columns"
        )
    wanted = ([cfg.text_column] if cfg.text_column else []) + list(cfg.numeric_columns)
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        avail = [c for c in frame.columns if c != "item"]
        raise ConfigError(
            f"features: dataset '{dataset}' item table has no column '{missing[0]}' (columns: {avail})"
        )
    items = _aligned(table, frame, dataset)
    blocks: list[np.ndarray] = []
    info: dict[str, Any] = {"columns": []}
    if cfg.text_column:
        col = items[cfg.text_column].cast(pl.String)
        has = col.is_not_null().to_numpy() & (col.fill_null("").str.strip_chars() != "").to_numpy()
        texts = col.fill_null("").to_list()
        emb, path, hit = embed_texts(
            texts, dataset=dataset, model=cfg.text_model, cache_dir=cfg.cache_dir,
            batch_size=cfg.batch_size, embedder=embedder,
        )  # fmt: skip
        emb = emb * has[:, None].astype(np.float32)  # no text: a zero block, not the "" vector
        blocks.append(emb)
        info.update(text_cache=str(path), text_cache_hit=hit, items_with_text=int(has.sum()))
        info["columns"].append({"name": cfg.text_column, "kind": "text", "dim": int(emb.shape[1])})
    for name in cfg.numeric_columns:
        try:
            v = items[name].cast(pl.Float64).to_numpy()
        except pl.exceptions.PolarsError:
            raise ConfigError(
                f"features.numeric_columns: column '{name}' of dataset '{dataset}' is not numeric"
            ) from None
        v = np.asarray(v, dtype=np.float64)
        blocks.append(zscore_train(v, train_items)[:, None])
        info["columns"].append(
            {
                "name": name,
                "kind": "numeric",
                "dim": 1,
                "known": int((~np.isnan(v)).sum()),
            }
        )
    feats = np.concatenate(blocks, axis=1).astype(np.float32)
    info["dim"] = int(feats.shape[1])
    info["fusion"] = cfg.fusion
    return feats, info


def attach_item_features(
    cfg: FeaturesConfig,
    dataset: str,
    table: InteractionTable,
    split: Split,
    data: TrainData,
    embedder: Embedder | None = None,
) -> dict[str, Any]:
    """Build the item features of ``cfg`` and put them into ``data.cache`` (no-op when unset).

    Sets ``data.cache["item_features"]`` (float32 ``[num_items, F]`` on ``data``'s device) and
    ``data.cache["item_feature_fusion"]``. Returns the info of :func:`build_item_features`.
    """
    train_items = np.zeros(table.num_items, dtype=bool)
    train_items[np.asarray(table.item)[np.asarray(split.assign) == TRAIN]] = True
    feats, info = build_item_features(cfg, dataset, table, train_items, embedder)
    if feats is not None:
        data.cache["item_features"] = torch.from_numpy(feats).to(data.device)
        data.cache["item_feature_fusion"] = cfg.fusion
    return info
