"""The typed objects passed between data stages.

``RawLog`` (dataset reader output, raw values, canonical column names)
→ ``validate_log`` → ``ValidLog`` (typed columns, canonical behaviour names, drop counts)
→ ``build_interactions`` → :class:`InteractionTable` (contiguous ids, vocabularies)
→ a splitter → :class:`Split` (which rows train, which are held out).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

#: canonical log columns; ``user`` and ``item`` are required
CANONICAL_COLUMNS: tuple[str, ...] = ("user", "item", "category", "behavior", "timestamp")
REQUIRED_COLUMNS: tuple[str, ...] = ("user", "item")
#: optional column of datasets with their own split: values train / valid / test / unused
SPLIT_COLUMN = "split"
#: optional 1-based source row number column used in error messages
ROW_COLUMN = "_row"

# Codes of Split.assign
TRAIN, VALID, TEST, EXCLUDED = 0, 1, 2, -1
GIVEN_CODES: dict[str, int] = {"train": TRAIN, "valid": VALID, "test": TEST, "unused": EXCLUDED}


@dataclass
class RawLog:
    """A behaviour log as read from disk, before validation.

    Attributes:
        frame: canonical column names (a subset of :data:`CANONICAL_COLUMNS`, plus optional
            ``split`` and ``_row``), raw values as in the file.
        source: file path (or a description of several files) used in error messages.
        behavior_map: dataset-default mapping of raw behaviour values to vocabulary names
            (config ``data.behavior_map`` entries take precedence).
        target_behavior: the dataset's default evaluated behaviour, if it has one.
        meta: dataset extras that later stages may use (e.g. ``ground_truth`` frame of the
            synthetic simulator's planted migrations, ``item_title`` frame).
    """

    frame: pl.DataFrame
    source: str
    behavior_map: dict[str, str] = field(default_factory=dict)
    target_behavior: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ValidLog:
    """A validated log: ``user``/``item`` (Utf8 or Int64), ``category`` (optional),
    ``behavior`` (canonical names, always present), ``timestamp`` (Int64 seconds, optional),
    optional ``split``. ``dropped`` counts rows removed by reason."""

    frame: pl.DataFrame
    source: str
    behaviors: tuple[str, ...]
    target_behavior: str | None
    dropped: dict[str, int] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class InteractionTable:
    """Events with contiguous integer ids; one row per event.

    Attributes:
        user, item: int64 ``[N]`` ids in ``0..num_users-1`` / ``0..num_items-1``.
        behavior: int8 ``[N]`` index into ``behaviors``.
        ts: int64 ``[N]`` Unix seconds, or ``None`` when the log has no timestamps.
        item_category: int64 ``[num_items]`` category id per item, ``-1`` when unknown.
        behaviors: behaviour vocabulary (funnel order).
        target_behavior: name of the default evaluated behaviour.
        user_ids, item_ids, category_ids: vocabularies (raw or pseudonymised ids as str),
            position = contiguous id.
        given_split: int8 ``[N]`` split codes (TRAIN/VALID/TEST/EXCLUDED) for datasets
            with their own split, else ``None``.
        dropped: rows removed while building, by reason (validation, dedup, k-core).
        meta: dataset extras carried through from :class:`RawLog`.
    """

    user: np.ndarray
    item: np.ndarray
    behavior: np.ndarray
    ts: np.ndarray | None
    item_category: np.ndarray
    behaviors: tuple[str, ...]
    target_behavior: str
    user_ids: np.ndarray
    item_ids: np.ndarray
    category_ids: np.ndarray
    given_split: np.ndarray | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.user.shape[0])

    @property
    def num_users(self) -> int:
        return int(self.user_ids.shape[0])

    @property
    def num_items(self) -> int:
        return int(self.item_ids.shape[0])

    @property
    def num_categories(self) -> int:
        return int(self.category_ids.shape[0])

    def behavior_index(self, name: str) -> int:
        return self.behaviors.index(name)

    def save_vocab(self, directory: str | Path) -> None:
        """Write ``users.csv``, ``items.csv`` and ``categories.csv`` (index, id[, category])."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        pl.DataFrame({"index": np.arange(self.num_users), "id": self.user_ids.astype(str)}).write_csv(
            d / "users.csv"
        )
        pl.DataFrame(
            {
                "index": np.arange(self.num_items),
                "id": self.item_ids.astype(str),
                "category": self.item_category,
            }
        ).write_csv(d / "items.csv")
        pl.DataFrame(
            {"index": np.arange(self.num_categories), "id": self.category_ids.astype(str)}
        ).write_csv(d / "categories.csv")


@dataclass
class Split:
    """Which events train and which are held out.

    Attributes:
        assign: int8 ``[N]`` per table row: TRAIN (message-passing edge and, for the target
            behaviour, a training positive), VALID / TEST (held-out target-behaviour events)
            or EXCLUDED (kept out of everything by the protocol, e.g. events after a user's
            held-out time, or other behaviours on a held-out pair under a random split).
        target: index of the evaluated behaviour in ``table.behaviors``.
        mode: the split strategy that produced it.
        info: cut-offs and counts for reports (e.g. ``excluded`` events by reason).
    """

    assign: np.ndarray
    target: int
    mode: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def train_idx(self) -> np.ndarray:
        return np.flatnonzero(self.assign == TRAIN)

    @property
    def valid_idx(self) -> np.ndarray:
        return np.flatnonzero(self.assign == VALID)

    @property
    def test_idx(self) -> np.ndarray:
        return np.flatnonzero(self.assign == TEST)
