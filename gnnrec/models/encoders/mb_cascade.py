"""Multi-behaviour cascade encoder (MB-CGCN / CRGCN style) for interest association."""

from __future__ import annotations

import logging
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import nn

from gnnrec.errors import ConfigError
from gnnrec.graph.data import GraphMeta, TrainData, check_behaviors
from gnnrec.models.base import EmbDict, ModelConfig, PairBatch, Recommender, register_model
from gnnrec.models.baselines.mf_bpr import ego_l2
from gnnrec.models.encoders.propagation import propagate
from gnnrec.utils.csr import csr_row_entries

log = logging.getLogger("gnnrec")

__all__ = ["EdgeCounts", "MBCascade", "MBCascadeConfig", "cascade_candidates"]


class EdgeCounts:
    """The pair-term feature of a behaviour's training edges as a user × item lookup:
    ``log(1 + count)``, or 1 with ``indicator``.

    Built from :attr:`TrainData.edge_index` and :attr:`TrainData.edge_count` (repeated
    pairs are summed); pairs without an edge read 0. Written by hand because a
    torch sparse tensor offers neither a batched pair lookup nor a cheap row gather that
    runs the same on CPU and CUDA: pair lookups are a binary search on the sorted keys
    ``user * I + item``, rows are gathered from CSR offsets
    (:func:`gnnrec.utils.csr.csr_row_entries`, as the evaluator's truth/mask rows).

    Shapes:
        ``pairs(u, i)``: ``[B]``; ``rows(u)``: ``[B, I]``.
    """

    def __init__(
        self, edge_index: torch.Tensor, count: torch.Tensor, num_users: int, num_items: int, indicator: bool = False
    ) -> None:
        self.num_items = num_items
        keys = edge_index[0] * num_items + edge_index[1]
        # TrainData's edges are unique and sorted already; coalescing keeps any input exact
        self.keys, inverse = torch.unique(keys, sorted=True, return_inverse=True)
        total = torch.zeros(self.keys.shape[0], device=keys.device).index_add_(0, inverse, count.float())
        self.col = self.keys % num_items
        self.value = torch.ones_like(total) if indicator else torch.log1p(total)
        bounds = torch.arange(num_users + 1, device=edge_index.device) * num_items
        self.crow = torch.searchsorted(self.keys, bounds)

    def pairs(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        if self.keys.numel() == 0:
            return torch.zeros(user.shape, device=user.device)
        q = user * self.num_items + item
        pos = torch.searchsorted(self.keys, q).clamp_(max=self.keys.numel() - 1)
        return torch.where(self.keys[pos] == q, self.value[pos], 0.0)

    def rows(self, user: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(user.shape[0], self.num_items, device=user.device)
        row_of, entry = csr_row_entries(self.crow, user)
        out[row_of, self.col[entry]] = self.value[entry]
        return out


class MBCascadeConfig(ModelConfig):
    """Hyper-parameters of :class:`MBCascade`."""

    dim: int = Field(64, ge=1)  # embedding size d (every block keeps it)
    # cascade order, funnel first and target last; None = the graph's edge behaviours in
    # vocabulary (funnel) order with the target moved last. Listed behaviours that are not
    # edge types of the training graph are skipped (logged).
    behaviors: tuple[str, ...] | None = None
    # LightGCN layers per block: one int for all, a list aligned with `behaviors` (which must
    # then be given), or a {behaviour: layers} mapping covering every cascade behaviour
    num_layers: int | tuple[int, ...] | dict[str, int] = 2
    readout: Literal["mean", "last"] = "mean"  # block output: layer mean (LightGCN/MB-CGCN) or last layer
    transform: Literal["linear", "none"] = "linear"  # MB-CGCN feature transformation between blocks
    transform_init: Literal["identity", "normal"] = "identity"  # W = I, or normal(0, transform_std)
    transform_std: float = Field(0.01, gt=0)  # std of the normal W init (MB-CGCN code: 0.01)
    residual: bool = False  # CRGCN: block output = block input + propagated embedding
    block_norm: bool = False  # CRGCN: L2-normalise the propagated rows before the residual add
    fusion: Literal["sum", "concat", "weighted", "last"] = "sum"  # aggregation of block outputs
    reg: float = Field(1e-4, ge=0)  # L2 weight on the batch's ego embeddings (see ego_l2)
    transform_reg: float | None = Field(None, ge=0)  # L2 weight on W (per batch); None = reg
    init: Literal["normal", "xavier"] = "normal"  # ego init: normal(0, init_std) or xavier_uniform
    init_std: float = Field(0.1, gt=0)  # std of the normal ego init
    # MB-CGCN's recipe: before training, fit the ego embeddings with BPR on the first block's
    # behaviour (a LightGCN with `pretrain_layers` layers over that graph; 0 = MF). 0 = off.
    pretrain_epochs: int = Field(0, ge=0)
    pretrain_behavior: str | None = None  # behaviour of the pre-training positives; None = first block
    pretrain_layers: int = Field(0, ge=0)  # LightGCN layers of the pre-training model
    pretrain_lr: float = Field(1e-2, gt=0)  # Adam learning rate of the pre-training
    pretrain_batch_size: int = Field(8192, ge=1)  # positive pairs per pre-training step
    # Beyond MB-CGCN: a pair term per listed (non-target) behaviour for the user's own
    # training edges, s(u, i) += alpha_b * log(1 + count_b(u, i)); () = off (MB-CGCN's score)
    pair_behaviors: tuple[str, ...] = ()
    # initial alpha_b; alpha is trained, but Adam moves it by about lr per step, so at the
    # cascade's lr (1e-3) this value mostly sets it: choose it on validation
    pair_init: float = 0.0
    # f(count) in the pair term: log(1 + count), or 1 for any edge (indicator)
    pair_feature: Literal["log_count", "indicator"] = "log_count"

    @field_validator("num_layers")
    @classmethod
    def _layers_non_negative(
        cls, v: int | tuple[int, ...] | dict[str, int]
    ) -> int | tuple[int, ...] | dict[str, int]:
        values = [v] if isinstance(v, int) else list(v.values()) if isinstance(v, dict) else list(v)
        if any(k < 0 for k in values):
            raise ValueError(f"layer counts must be >= 0, got {v}")
        return v


def cascade_candidates(behaviors: tuple[str, ...] | None, meta: GraphMeta) -> tuple[str, ...]:
    """The cascade order before skipping: configured behaviours, or the graph's edge
    behaviours (vocabulary = funnel order) with the target moved last.

    Raises:
        ConfigError: a configured list with duplicates or one that does not end at the
            target behaviour.
    """
    target = meta.target_behavior
    if behaviors is None:
        rest = tuple(b for b in meta.behaviors if b != target)
        return rest + ((target,) if target in meta.behaviors else ())
    if len(set(behaviors)) != len(behaviors):
        raise ConfigError(f"model.params.behaviors: behaviours must be unique, got {list(behaviors)}")
    if not behaviors or behaviors[-1] != target:
        raise ConfigError(
            f"model.params.behaviors: the cascade must end at the target behaviour '{target}', "
            f"got {list(behaviors)}"
        )
    return tuple(behaviors)


@register_model(
    "mb_cascade",
    config=MBCascadeConfig,
    description="Multi-behaviour cascading LightGCN blocks, funnel -> target (MB-CGCN / CRGCN style).",
)
class MBCascade(Recommender):
    r"""Cascading behaviour-specific LightGCN blocks for multi-behaviour recommendation.

    Design (behaviours :math:`b_1 \to \dots \to b_T` in funnel order, the target last, e.g.
    view → cart → buy):

    .. math::
        X_1 = E^{(0)}, \qquad
        H_t = \operatorname{LightGCN}_{K_t}(\tilde A_{b_t}, X_t)
              \;[+\, X_t \text{ if residual}], \qquad
        X_{t+1} = \big[H_t^{\text{user}} W^u_{b_t} \,\|\, H_t^{\text{item}} W^i_{b_t}\big],

    where :math:`\tilde A_{b}` is the symmetric-normalised user–item adjacency of behaviour
    ``b`` alone (``data.norm_adj((b,))``), :math:`\operatorname{LightGCN}_K` the layer mean
    :math:`\frac{1}{K+1}\sum_{k=0}^{K} \tilde A^k X` (``readout: mean``) or the last layer
    :math:`\tilde A^K X` (``readout: last``), and the final embedding
    :math:`Z = \sum_t H_t` (``fusion: sum``), :math:`[H_1 \| \dots \| H_T]` (``concat``),
    :math:`\sum_t \alpha_{b_t} H_t` with learnable :math:`\alpha` initialised to 1
    (``weighted``) or :math:`H_T` (``last``). The score is :math:`s(u, i) = z_u^\top z_i`,
    trained with ``train.loss`` (BPR) on the positives of ``train.positives`` (the target
    behaviour in the Tmall config) plus L2 on the batch's ego embeddings and on the
    transformation matrices.

    **Pair term** (``pair_behaviors``, off by default; not in MB-CGCN or CRGCN): the score
    also reads the user's own auxiliary edges to the candidate,

    .. math::
        s(u, i) = z_u^\top z_i + \sum_{b \in \text{pair\_behaviors}}
                  \alpha_b \log\big(1 + c_b(u, i)\big),

    where :math:`c_b(u, i)` is the number of training ``b`` events of the pair (0 without an
    edge; ``pair_feature: indicator`` uses :math:`\mathbb{1}[c_b(u, i) > 0]` instead of the
    log) and :math:`\alpha_b` a trainable scalar initialised to ``pair_init``. Embeddings of
    dimension ``d`` cannot single out the ~50 items a user viewed among thousands: on Tmall
    80% of the test buys were viewed in training, yet two thirds of the cascade's top 10 are
    items the user never viewed or carted. The term gives the model that link feature
    directly, as link-prediction models add structural features of the pair to a GNN score
    (e.g. Neo-GNNs, Yun et al., NeurIPS 2021, a learned mix of GNN and neighbourhood-overlap
    scores). It is built from training edges only (the evaluator's ranking of a candidate
    reads the same training graph the loss did), and the target behaviour is refused (every
    training positive carries it). Trained with uniform negatives the term barely moves
    (those negatives are easy), and with behaviour negatives BPR pulls :math:`\alpha` down
    while a full ranking wants it large, so ``pair_init`` is a hyper-parameter chosen on
    validation (Tmall: 100, where viewed/carted items rank first, ordered among themselves by
    the pair term and the embeddings together; the pair term alone ranks them 0.046 H@10
    lower, benchmarks/results/tmall-mb.md).

    The cascade is the *interest association* path: a user's interest expressed by a
    weaker, abundant behaviour (views) is the starting point from which the next, stronger
    behaviour's graph refines it, and the fused embedding keeps every stage, so the same
    model yields per-behaviour embeddings (:meth:`block_outputs`) for analysis.

    What is taken from which paper:
        * **MB-CGCN** (Cheng et al., "Multi-Behavior Recommendation with Cascading Graph
          Convolution Networks", WWW 2023, https://arxiv.org/abs/2303.15720, code
          github.com/SS-00-SS/MBCGCN): the cascade of per-behaviour LightGCN blocks with
          layer-mean readout, each block fed by the previous block's output; the
          per-behaviour feature transformation (separate bias-free user and item matrices,
          ``transform: linear``); fusion of all block outputs by sum (the code's choice;
          the paper also studies concatenation and weighted combinations); BPR on the
          target behaviour only; L2 on ego embeddings and the W's divided by the batch
          size; per-behaviour layer counts (the code's defaults are view 1, cart 5,
          buy 3 layers).
        * **CRGCN** (Yan et al., "Cascading Residual Graph Convolutional Network for
          Multi-Behavior Recommendation", TOIS 2023, https://arxiv.org/abs/2205.13128,
          code github.com/MingshiYan/CRGCN): the residual connection between blocks
          (``residual: true``) with row-wise L2 normalisation of the propagated
          embedding (``block_norm: true``), stacked GCN layers without a layer mean
          (``readout: last``) and prediction from the last block only (``fusion: last``).
          With ``residual``, ``block_norm``, ``readout: last``, ``transform: none`` and
          ``fusion: last`` the encoder is CRGCN's.

    Differences from the paper(s):
        * MB-CGCN initialises the ego embeddings from a LightGCN pre-trained (separately, by
          its ``GCN.py``) on the first behaviour. Here that is optional and part of
          :meth:`prepare` (``pretrain_epochs > 0``; ``pretrain_layers`` = 0 is an MF
          pre-training, much cheaper than MB-CGCN's 3-layer LightGCN on the large view graph);
          by default the ego embeddings are trained from scratch (normal, std ``init_std``).
        * MB-CGCN initialises W from N(0, 0.01²); the default here is the identity
          (``transform_init: identity``), so an untrained cascade is plain propagation
          over the successive behaviour graphs; ``transform_init: normal`` is the paper's.
        * CRGCN trains with a multi-task BPR loss over every behaviour (each block's
          output on its own behaviour); here only ``train.positives`` (one loss) is used.
          ``train.positives: all`` trains the fused embedding on every behaviour instead.
        * CRGCN uses xavier init and a GCNConv (degree-normalised, no self-loops) per
          layer; the propagation here is the symmetric ``D^-1/2 A D^-1/2`` of LightGCN,
          which is what GCNConv computes without self-loops.
        * No node or message dropout (both codes leave it off by default).
        * Behaviours are generic: any funnel over the vocabulary (``fav`` takes its
          vocabulary place between cart and buy by default). A behaviour listed but absent
          from the training graph (not an edge type, or no training edges) is skipped, and
          the cascade links its neighbours directly.
        * The pair term (above) is an addition; with ``pair_behaviors: []`` the score is
          MB-CGCN's dot product.
        * Adam on mini-batches of shuffled positives with uniform negatives from the generic
          trainer (MB-CGCN samples one positive/negative per user per step);
          ``train.behavior_negatives`` swaps a share of them for items the user viewed or
          carted but did not buy (multi-channel BPR; the Tmall config uses 20%).

    Propagation uses the cached per-behaviour CSR adjacencies and
    :func:`~gnnrec.models.encoders.propagation.propagate` (symmetric SpMM, no transpose in
    the backward pass): a step costs :math:`2\sum_t K_t` sparse products.

    Args:
        meta: graph sizes and edge behaviours.
        config: :class:`MBCascadeConfig`.

    Shapes:
        ``encode``: ``{"user": [U, D], "item": [I, D]}`` with ``D = dim`` (``D = T·dim``
        for ``fusion: concat`` over ``T`` active blocks); ``score``: ``[B]``;
        ``score_all``: ``[B, I]``.

    Example:
        >>> spec = ModelSpec(name="mb_cascade", params={"behaviors": ["view", "cart", "buy"],
        ...                                             "num_layers": [1, 1, 3]})  # doctest: +SKIP
        >>> model = build_model(spec, data.meta); model.prepare(data)
        >>> model.cascade_order(data)
        ('view', 'cart', 'buy')
    """

    def __init__(self, meta: GraphMeta, config: MBCascadeConfig) -> None:
        super().__init__(meta)
        self.config = config
        candidates = cascade_candidates(config.behaviors, meta)
        self.layers = self._resolve_layers(config, candidates)
        skipped = [b for b in candidates if b not in meta.behaviors]
        if skipped:
            log.warning(
                "mb_cascade: behaviour(s) %s are not edge types of the training graph %s; skipped",
                skipped,
                list(meta.behaviors),
            )
        #: behaviours of the cascade that are edge types of the graph, in cascade order
        self.behaviors: tuple[str, ...] = tuple(b for b in candidates if b in meta.behaviors)
        if not self.behaviors:
            raise ConfigError(
                f"model.params.behaviors: none of {list(candidates)} is an edge type of the "
                f"training graph {list(meta.behaviors)}"
            )
        d = config.dim
        self.user_emb = nn.Embedding(meta.num_users, d)
        self.item_emb = nn.Embedding(meta.num_items, d)
        # one (user, item) transformation per behaviour that can feed a next block
        feeding = self.behaviors[:-1] if config.transform == "linear" else ()
        self.user_transform = nn.ModuleDict({b: nn.Linear(d, d, bias=False) for b in feeding})
        self.item_transform = nn.ModuleDict({b: nn.Linear(d, d, bias=False) for b in feeding})
        self.fusion_weight = (
            nn.Parameter(torch.ones(len(self.behaviors))) if config.fusion == "weighted" else None
        )
        pair = check_behaviors(config.pair_behaviors, meta, "model.params.pair_behaviors") or ()
        if meta.target_behavior in pair:
            raise ConfigError(
                f"model.params.pair_behaviors: the target behaviour '{meta.target_behavior}' "
                "cannot be a pair feature (every training positive carries it, and training "
                "targets are masked at evaluation); list auxiliary behaviours such as view, cart"
            )
        #: behaviours whose training edges add alpha_b * f(count) to a pair's score
        self.pair_behaviors: tuple[str, ...] = pair
        self.pair_weight = nn.Parameter(torch.zeros(len(pair))) if pair else None
        self._edge_counts: dict[str, EdgeCounts] = {}
        self.reset_parameters()

    @staticmethod
    def _resolve_layers(config: MBCascadeConfig, candidates: tuple[str, ...]) -> dict[str, int]:
        nl = config.num_layers
        if isinstance(nl, int):
            return {b: nl for b in candidates}
        if isinstance(nl, dict):
            missing = [b for b in candidates if b not in nl]
            if missing:
                raise ConfigError(
                    f"model.params.num_layers: no layer count for behaviour '{missing[0]}' "
                    f"(cascade: {list(candidates)})"
                )
            return {b: int(nl[b]) for b in candidates}
        if config.behaviors is None:
            raise ConfigError(
                "model.params.num_layers: a list of layer counts needs model.params.behaviors "
                "(the list is aligned with it); or use a {behaviour: layers} mapping"
            )
        if len(nl) != len(candidates):
            raise ConfigError(
                f"model.params.num_layers: {len(nl)} layer counts for {len(candidates)} "
                f"behaviours {list(candidates)}"
            )
        return dict(zip(candidates, (int(k) for k in nl)))

    def reset_parameters(self) -> None:
        for emb in (self.user_emb, self.item_emb):
            if self.config.init == "normal":
                nn.init.normal_(emb.weight, std=self.config.init_std)
            else:
                nn.init.xavier_uniform_(emb.weight)
        for lin in self._linears():
            if self.config.transform_init == "identity":
                nn.init.eye_(lin.weight)
            else:
                nn.init.normal_(lin.weight, std=self.config.transform_std)
        if self.fusion_weight is not None:
            nn.init.ones_(self.fusion_weight)
        if self.pair_weight is not None:
            nn.init.constant_(self.pair_weight, self.config.pair_init)

    def _linears(self) -> list[nn.Linear]:
        return [
            m
            for md in (self.user_transform, self.item_transform)
            for m in md.values()
            if isinstance(m, nn.Linear)
        ]

    # ------------------------------------------------------------------ structure
    def cascade_order(self, data: TrainData) -> tuple[str, ...]:
        """The blocks that run on ``data``, in order: cascade behaviours with at least one
        training edge (a behaviour with an empty edge set is skipped)."""
        return tuple(b for b in self.behaviors if b in data.edge_index and data.edge_index[b].shape[1] > 0)

    def prepare(self, data: TrainData) -> None:
        """Cache each block's adjacency and, with ``pretrain_epochs > 0``, pre-train the ego
        embeddings (every call pre-trains again from the current weights)."""
        order = self.cascade_order(data)
        empty = [b for b in self.behaviors if b not in order]
        if empty:
            log.warning("mb_cascade: behaviour(s) %s have no training edges; their blocks are skipped", empty)
        for b in order:
            data.norm_adj((b,))  # build (and cache on the data) each behaviour's adjacency once
        self._edge_counts = {
            b: EdgeCounts(
                data.edge_index[b],
                data.edge_count[b],
                self.meta.num_users,
                self.meta.num_items,
                indicator=self.config.pair_feature == "indicator",
            )
            for b in self.pair_behaviors
        }
        if self.config.pretrain_epochs > 0 and order:
            self.pretrain(data, self.config.pretrain_behavior or order[0])

    def pretrain(self, data: TrainData, behavior: str) -> list[float]:
        """Fit the ego embeddings with BPR on ``behavior``'s training edges (MB-CGCN's
        pre-training): a LightGCN with ``pretrain_layers`` layers over that behaviour's graph
        (0 layers = MF), Adam with ``pretrain_lr``, one uniform negative per positive (not
        a positive of that behaviour), L2 ``reg`` on the batch's ego embeddings.

        Randomness comes from a generator seeded from torch's global generator, so a seeded
        run is reproducible. Returns the mean loss per epoch (also logged).

        Raises:
            ConfigError: ``behavior`` has no training edges.
        """
        from gnnrec.data.sampling import UniformNegativeSampler
        from gnnrec.losses import bpr

        cfg = self.config
        pairs = data.edge_index.get(behavior)
        if pairs is None or pairs.shape[1] == 0:
            raise ConfigError(
                f"model.params.pretrain_behavior: behaviour '{behavior}' has no training edges "
                f"(edge behaviours: {list(data.edge_index)})"
            )
        dev = pairs.device
        gen = torch.Generator(device=dev)
        gen.manual_seed(int(torch.randint(0, 2**62, (1,))))
        sampler = UniformNegativeSampler(self.meta.num_items, pairs, gen)
        params = [self.user_emb.weight, self.item_emb.weight]
        opt = torch.optim.Adam(params, lr=cfg.pretrain_lr)
        adj = data.norm_adj((behavior,)) if cfg.pretrain_layers > 0 else None
        nu, n = self.meta.num_users, int(pairs.shape[1])
        losses: list[float] = []
        for epoch in range(1, cfg.pretrain_epochs + 1):
            perm = torch.randperm(n, generator=gen, device=dev)
            total = torch.zeros((), device=dev)
            for start in range(0, n, cfg.pretrain_batch_size):
                batch = pairs[:, perm[start : start + cfg.pretrain_batch_size]]
                u, i = batch[0], batch[1]
                j = sampler.sample(u, 1)[:, 0]
                if adj is None:
                    users, items = self.user_emb.weight, self.item_emb.weight
                else:
                    layers = propagate(adj, self.ego(), cfg.pretrain_layers)
                    h = torch.stack(layers).mean(0)
                    users, items = h[:nu], h[nu:]
                pos = (users[u] * items[i]).sum(-1)
                neg = (users[u] * items[j]).sum(-1)
                loss = bpr(pos, neg.unsqueeze(1))
                if cfg.reg > 0:
                    loss = loss + ego_l2(
                        cfg.reg, self.user_emb.weight[u], self.item_emb.weight[i], self.item_emb.weight[j]
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total = total + loss.detach() * u.shape[0]
            losses.append(float(total) / n)
            log.info("mb_cascade: pre-training on '%s', epoch %d: loss %.4f", behavior, epoch, losses[-1])
        return losses

    def ego(self) -> torch.Tensor:
        """Ego embeddings ``[U + I, d]`` (users first)."""
        return torch.cat([self.user_emb.weight, self.item_emb.weight])

    def _transform(self, b: str, h: torch.Tensor) -> torch.Tensor:
        nu = self.meta.num_users
        return torch.cat([self.user_transform[b](h[:nu]), self.item_transform[b](h[nu:])])

    def block_outputs(self, data: TrainData) -> dict[str, torch.Tensor]:
        """Per-behaviour block outputs ``H_t`` ``[U + I, d]`` (users first), in cascade order."""
        cfg = self.config
        order = self.cascade_order(data)
        x = self.ego()
        out: dict[str, torch.Tensor] = {}
        for t, b in enumerate(order):
            layers = propagate(data.norm_adj((b,)), x, self.layers[b])
            if cfg.readout == "mean":
                h = layers[0]
                for layer in layers[1:]:
                    h = h + layer
                h = h / len(layers)
            else:
                h = layers[-1]
            if cfg.block_norm:
                h = F.normalize(h, dim=1)
            if cfg.residual:
                h = h + x
            out[b] = h
            if t + 1 < len(order):
                x = self._transform(b, h) if b in self.user_transform else h
        return out

    def encode(self, data: TrainData) -> EmbDict:
        blocks = self.block_outputs(data)
        hs = list(blocks.values())
        if not hs:  # no behaviour has training edges: plain matrix factorisation
            z = self.ego()
        elif self.config.fusion == "sum":
            z = torch.stack(hs).sum(0)
        elif self.config.fusion == "concat":
            z = torch.cat(hs, dim=1)
        elif self.config.fusion == "weighted":
            assert self.fusion_weight is not None
            idx = torch.tensor([self.behaviors.index(b) for b in blocks], device=hs[0].device)
            w = self.fusion_weight[idx].view(-1, 1, 1)
            z = (w * torch.stack(hs)).sum(0)
        else:  # last
            z = hs[-1]
        nu = self.meta.num_users
        return {"user": z[:nu], "item": z[nu:]}

    def _pair_counts(self) -> list[EdgeCounts]:
        if len(self._edge_counts) != len(self.pair_behaviors):
            raise RuntimeError("mb_cascade: call prepare(data) before scoring with pair_behaviors")
        return [self._edge_counts[b] for b in self.pair_behaviors]

    def score(self, emb: EmbDict, user_index: torch.Tensor, item_index: torch.Tensor) -> torch.Tensor:
        s = super().score(emb, user_index, item_index)
        if self.pair_weight is None:
            return s
        for w, counts in zip(self.pair_weight, self._pair_counts()):
            s = s + w * counts.pairs(user_index, item_index)
        return s

    def score_all(self, emb: EmbDict, user_index: torch.Tensor) -> torch.Tensor:
        s = super().score_all(emb, user_index)
        if self.pair_weight is None:
            return s
        for w, counts in zip(self.pair_weight, self._pair_counts()):
            s = s + w * counts.rows(user_index)
        return s

    def regularization(self, emb: EmbDict, batch: PairBatch) -> torch.Tensor:
        cfg = self.config
        dev = batch.user.device
        total = torch.zeros((), device=dev)
        if cfg.reg > 0:
            total = total + ego_l2(
                cfg.reg,
                self.user_emb.weight[batch.user],
                self.item_emb.weight[batch.pos],
                self.item_emb.weight[batch.neg],
            )
        w_reg = cfg.reg if cfg.transform_reg is None else cfg.transform_reg
        if w_reg > 0 and len(self.user_transform) > 0:
            # MB-CGCN: l2_loss(W) = ||W||^2 / 2, divided by the batch size like the ego term
            sq = torch.stack([lin.weight.pow(2).sum() for lin in self._linears()]).sum()
            total = total + w_reg * sq / 2 / batch.user.shape[0]
        return total

    def extra_repr(self) -> str:
        return (
            f"num_users={self.meta.num_users}, num_items={self.meta.num_items}, "
            f"cascade={list(self.behaviors)}, layers={self.layers}, " + super().extra_repr()
        )
