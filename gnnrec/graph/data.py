"""What a model sees of the training data: :class:`TrainData`.

Built by :func:`gnnrec.graph.build.build_train_data` from an interaction table and a split;
it holds *only* training events (``Split.assign == TRAIN``), so every structure derived from
it (PyG ``HeteroData``, normalised adjacency, popularity, item-item similarity) is free of
held-out information by construction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from gnnrec.errors import ConfigError

#: ``TrainData.cache`` entries that are inputs, not derived structures: :meth:`TrainData.to`
#: carries them over (item feature matrix and its fusion mode, negative-sampling candidates)
PORTABLE_CACHE_KEYS: tuple[str, ...] = ("item_features", "item_feature_fusion", "negative_items")


@dataclass(frozen=True)
class GraphMeta:
    """Sizes and vocabularies a model constructor needs."""

    num_users: int
    num_items: int
    num_categories: int
    behaviors: tuple[str, ...]  # behaviours present as message-passing edge types
    target_behavior: str
    add_reverse: bool = True  # graph.add_reverse: HeteroData gets rev_<behaviour> / rev_belongs_to


def check_behaviors(behaviors: tuple[str, ...] | None, meta: GraphMeta, key: str) -> tuple[str, ...] | None:
    """Validate a ``behaviors`` option (a model's, ``train.behavior_negatives``) against
    the graph's edge types; ``key`` names the option in the error.

    Returns the de-duplicated tuple (``None`` stays ``None`` = all edge behaviours).

    Raises:
        ConfigError: a behaviour that is not an edge type of the training graph.
    """
    if behaviors is None:
        return None
    unknown = [b for b in behaviors if b not in meta.behaviors]
    if unknown:
        raise ConfigError(
            f"{key}: behaviour '{unknown[0]}' is not an edge type of the training graph "
            f"(graph edge behaviours: {list(meta.behaviors)}; see graph.behaviors)"
        )
    return tuple(dict.fromkeys(behaviors))


@dataclass
class TrainData:
    """Training-only graph and positives, on one device.

    Attributes:
        meta: sizes and behaviour names.
        edge_index: per behaviour, unique user→item training edges ``[2, E_b]`` (row 0 user,
            row 1 item), sorted by (user, item).
        edge_ts: per behaviour, last timestamp of the edge ``[E_b]`` (int64), when known.
        edge_count: per behaviour, number of training events behind each edge ``[E_b]``.
        pos_index: unique training positive pairs ``[2, P]`` used by the loss and by
            count-based baselines (target behaviour, or all behaviours per
            ``train.positives``).
        item_category: ``[num_items]`` category id, ``-1`` when unknown.
        cache: lazily built derived structures (normalised adjacency, HeteroData, ...);
            keyed by name, cleared by :meth:`to`.
    """

    meta: GraphMeta
    edge_index: dict[str, torch.Tensor]
    edge_ts: dict[str, torch.Tensor]
    edge_count: dict[str, torch.Tensor]
    pos_index: torch.Tensor
    item_category: torch.Tensor
    cache: dict[str, Any] = field(default_factory=dict)
    #: builds :attr:`events` on first use (sorting every training event costs seconds on a
    #: 10M-row log, and only sequential / session models need it); ``None``: no event list
    event_source: Callable[[], torch.Tensor] | None = field(default=None, repr=False, compare=False)

    @property
    def events(self) -> torch.Tensor | None:
        """Time-ordered training events ``[4, N]`` int64: rows user, item, is-target (1 when
        the event is of the split's target behaviour, else 0), timestamp (0 when the log has
        none); sorted by (user, ts, behaviour, item), so ties are broken independently of the
        log's row order. Sequential / session models read users' histories from it. Built
        lazily and cached; ``None`` when the data was built without an event source."""
        if "events" not in self.cache:
            if self.event_source is None:
                return None
            self.cache["events"] = self.event_source().to(self.device)
        return self.cache["events"]

    @property
    def device(self) -> torch.device:
        return self.pos_index.device

    def to(self, device: torch.device | str) -> TrainData:
        """A copy on ``device`` (derived caches are rebuilt there on demand)."""
        dev = torch.device(device)
        out = TrainData(
            meta=self.meta,
            edge_index={k: v.to(dev) for k, v in self.edge_index.items()},
            edge_ts={k: v.to(dev) for k, v in self.edge_ts.items()},
            edge_count={k: v.to(dev) for k, v in self.edge_count.items()},
            pos_index=self.pos_index.to(dev),
            item_category=self.item_category.to(dev),
            event_source=self.event_source,
        )
        # inputs rather than derived structures (item features, negative candidates): kept
        for key in PORTABLE_CACHE_KEYS:
            if key in self.cache:
                v = self.cache[key]
                out.cache[key] = v.to(dev) if isinstance(v, torch.Tensor) else v
        return out

    def interaction_pairs(self, behaviors: tuple[str, ...] | None = None) -> torch.Tensor:
        """Cached unique user→item pairs ``[2, E]``, sorted by (user, item), over the given
        behaviours (default: all edge types)."""
        from gnnrec.graph.build import union_pairs

        names = self.meta.behaviors if behaviors is None else tuple(behaviors)
        key = ("interaction_pairs", names)
        if key not in self.cache:  # build_train_data seeds it for the edge types
            self.cache[key] = union_pairs([self.edge_index[b] for b in names], self.meta.num_items)
        return self.cache[key]

    def norm_adj(self, behaviors: tuple[str, ...] | None = None) -> torch.Tensor:
        """Cached symmetric-normalised bipartite adjacency ``D^-1/2 A D^-1/2`` of shape
        ``[U+I, U+I]`` (sparse CSR; users first, then items) over the given behaviours."""
        key = ("norm_adj", behaviors)
        if key not in self.cache:
            from gnnrec.graph.build import normalized_adjacency

            self.cache[key] = normalized_adjacency(
                self.interaction_pairs(behaviors), self.meta.num_users, self.meta.num_items
            )
        return self.cache[key]

    def hetero(self) -> Any:
        """Cached PyG ``HeteroData`` (user / item / category, behaviour-typed edges)."""
        if "hetero" not in self.cache:
            from gnnrec.graph.build import build_hetero_data

            self.cache["hetero"] = build_hetero_data(self)
        return self.cache["hetero"]
