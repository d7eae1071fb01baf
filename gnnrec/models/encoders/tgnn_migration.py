r"""Time-aware GNN for interest migration with streaming updates (``tgnn_migration``).

Design (what comes from which paper):

* **Recency-weighted propagation** (LightGCN's linear layers and layer mean, with TGN /
  DGSR's idea that edge time matters). Each training edge ``(u, i, b)`` of behaviour ``b``
  with last event time ``t`` gets the weight

  .. math::
      w = f + (1 - f)\,\exp(-\Delta t / \tau_b), \qquad \Delta t = T_u - t \ge 0,

  where :math:`T_u` is the user's clock (time of the user's latest training event),
  :math:`\tau_b` a time constant per behaviour (``decay: learned`` — a learnable
  :math:`\log \tau_b`; ``fixed`` — the configured value; ``none`` — :math:`w = 1`) and
  :math:`f` = ``weight_floor`` keeps stale edges as a weak prior. A pair's weight is the
  sum over its behaviours. Category nodes join the graph through ``item -> category``
  edges (weight ``category_weight``), so category interest flows between the items of a
  category and reaches users at two hops. The adjacency is the symmetric weighted
  normalisation :math:`D^{-1/2} W D^{-1/2}` over users, items and categories, and the
  embeddings are the mean of ``num_layers + 1`` propagation layers (LightGCN).
* **Recent-behaviour readout** (SR-GNN's attention over a session's items; TGN's time
  encoding :math:`\cos(\omega \Delta t + \varphi)`). For the user's ``recent_k`` most
  recent distinct training items :math:`i_k` (category :math:`c_k`, behaviour :math:`b_k`,
  age :math:`\Delta t_k = T_u - t_k` in hours),

  .. math::
      \alpha_k = \operatorname{softmax}_k\big((W_q h_u)^\top
      (W_k (h_{i_k} + h_{c_k} + W_t \cos(\omega \Delta t_k + \varphi) + B_{b_k}))
      / \sqrt{d}\big), \quad
      r_u = \sum_k \alpha_k (h_{i_k} + h_{c_k}),

  and the user representation is :math:`z_u = h_u + \gamma r_u` (:math:`\gamma > 0`
  learnable), scores :math:`s(u, i) = z_u^\top h_i`.
* **Streaming** (TGN's event-driven memory, without its learnt memory updater): ``update``
  appends new events to the affected users' recent buffers, advances their clocks and
  recomputes only their readouts from the frozen propagated item/category/user tables.
  No gradient step, no parameter change, deterministic; other users are untouched.

Differences from the papers:
    * TGN (Rossi et al. 2020, https://arxiv.org/abs/2006.10637) keeps a GRU memory per
      node updated by messages and a temporal graph attention embedding; here the
      "memory" is the non-parametric buffer of recent items, and only its time encoding
      and an attention readout are taken. No memory staleness / batch-ordering issues.
    * DGSR (Zhang et al. 2022, https://arxiv.org/abs/2104.07368) builds a dynamic
      user-item graph ordered by time and propagates with order-aware messages; here time
      enters as an exponential edge weight on the static training graph (one graph for
      all users, so training propagates the whole graph per step like LightGCN).
    * SR-GNN (Wu et al. 2019, https://arxiv.org/abs/1811.00855) attends over a session's
      item graph with the last item as query; here the query is the user's propagated
      embedding and keys carry time, behaviour and category.
    * The edge clock is per user (the user's latest training event), so a user's own
      recent behaviour outweighs their stale behaviour whatever the calendar date; the
      propagated tables are not re-propagated during streaming (item embeddings frozen).
    * Trained like every other model here: Adam, BPR/BCE on uniformly sampled negatives,
      L2 on the batch's ego embeddings.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from gnnrec.errors import GnnrecError
from gnnrec.graph.data import GraphMeta, TrainData, check_behaviors
from gnnrec.models.base import (
    EmbDict,
    ModelConfig,
    PairBatch,
    Recommender,
    register_model,
)
from gnnrec.models.baselines.mf_bpr import batch_ego_l2
from gnnrec.models.streaming import EventBatch

__all__ = ["TGNNMigration", "TGNNMigrationConfig", "decay_weights", "recent_table"]

_HOUR = 3600.0
_LOG_TAU_MIN, _LOG_TAU_MAX = (
    math.log(1.0 / 60.0),
    math.log(24.0 * 365.0 * 10.0),
)  # 1 min .. 10 years


class TGNNMigrationConfig(ModelConfig):
    """Hyper-parameters of :class:`TGNNMigration`."""

    dim: int = Field(64, ge=1)  # embedding size d
    num_layers: int = Field(2, ge=0)  # propagation layers K
    reg: float = Field(1e-4, ge=0)  # L2 weight on the batch's ego embeddings
    init_std: float = Field(0.1, gt=0)  # std of the normal init of the ego embeddings
    behaviors: tuple[str, ...] | None = None  # edge behaviours of the graph; None = all
    decay: Literal["learned", "fixed", "none"] = (
        "learned"  # edge time decay exp(-Δt/τ_b)
    )
    tau_hours: float | dict[str, float] = (
        72.0  # τ_b in hours (initial value when learned);
    )
    # one value for all behaviours or {behaviour: hours} covering the graph's behaviours
    weight_floor: float = Field(0.1, ge=0, le=1)  # f in w = f + (1 - f) exp(-Δt/τ)
    category_edges: bool = True  # add item -> category edges to the propagation graph
    category_weight: float = Field(1.0, gt=0)  # weight of an item -> category edge
    readout: Literal["attention", "none"] = (
        "attention"  # recent-item readout; none = graph only
    )
    recent_k: int = Field(
        20, ge=1
    )  # recent distinct training items per user in the readout
    time_dim: int = Field(16, ge=1)  # size of the cos(ωΔt + φ) time encoding
    gamma: float = Field(
        1.0, gt=0
    )  # initial weight γ of the readout in z_u = h_u + γ r_u


def decay_weights(
    dt_hours: torch.Tensor, tau_hours: torch.Tensor, floor: float
) -> torch.Tensor:
    """Edge weights ``floor + (1 - floor) * exp(-dt / tau)`` (element-wise, broadcasting)."""
    return floor + (1.0 - floor) * torch.exp(-dt_hours / tau_hours)


def recent_table(
    user: np.ndarray,
    item: np.ndarray,
    behavior: np.ndarray,
    ts: np.ndarray,
    rows: np.ndarray,
    k: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Padded tables of each listed user's ``k`` most recent *distinct* items.

    An item seen several times keeps its latest event (ties on ``ts``: the higher behaviour
    index, i.e. the later funnel step). Items are ordered most recent first (ties: lower
    item index first).

    Args:
        user, item, behavior, ts: events ``[N]`` (int64); every ``user`` is in ``rows``.
        rows: sorted unique user indices ``[R]``; output row ``r`` belongs to ``rows[r]``.
        k: table width.

    Returns:
        ``(item [R, k], behavior [R, k], ts [R, k], mask [R, k])``; padded slots have item
        0, behaviour 0, ts 0 and mask False.
    """
    r = rows.shape[0]
    out_i = np.zeros((r, k), dtype=np.int64)
    out_b = np.zeros((r, k), dtype=np.int64)
    out_t = np.zeros((r, k), dtype=np.int64)
    out_m = np.zeros((r, k), dtype=bool)
    if user.size == 0 or r == 0:
        return out_i, out_b, out_t, out_m
    row = np.searchsorted(rows, user)
    # sort by (row, item, ts desc, behaviour desc): the first of each (row, item) is its latest
    order = np.lexsort((-behavior, -ts, item, row))
    row_s, item_s = row[order], item[order]
    first = np.ones(order.size, dtype=bool)
    first[1:] = (row_s[1:] != row_s[:-1]) | (item_s[1:] != item_s[:-1])
    keep = order[first]
    # then by (row, ts desc, item) and rank inside each row
    o2 = keep[np.lexsort((item[keep], -ts[keep], row[keep]))]
    row2 = row[o2]
    start = np.ones(o2.size, dtype=bool)
    start[1:] = row2[1:] != row2[:-1]
    starts = np.flatnonzero(start)
    group = np.cumsum(start) - 1
    rank = np.arange(o2.size) - starts[group]
    sel = rank < k
    rr, cc, src = row2[sel], rank[sel], o2[sel]
    out_i[rr, cc] = item[src]
    out_b[rr, cc] = behavior[src]
    out_t[rr, cc] = ts[src]
    out_m[rr, cc] = True
    return out_i, out_b, out_t, out_m


class _ValuedSymSpMM(torch.autograd.Function):
    """``A(v) @ X`` for a symmetric CSR pattern whose values ``v`` may need a gradient.

    Forward builds the CSR from the cached pattern (no sort). Backward: ``dX = A g`` (the
    same CSR, as ``A`` is symmetric) and ``dv_e = <g[row_e], x[col_e]>`` in chunks.
    """

    @staticmethod
    def forward(
        ctx: Any,
        vals: torch.Tensor,
        x: torch.Tensor,
        crow: torch.Tensor,
        col: torch.Tensor,
        row: torch.Tensor,
    ) -> torch.Tensor:
        n = crow.shape[0] - 1
        adj = torch.sparse_csr_tensor(
            crow, col, vals.detach(), size=(n, n), check_invariants=False
        )
        ctx.adj, ctx.row, ctx.col = adj, row, col
        ctx.save_for_backward(x)
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (x,) = ctx.saved_tensors
        grad = grad.contiguous()
        g_vals = g_x = None
        if ctx.needs_input_grad[0]:
            nnz = ctx.row.shape[0]
            g_vals = torch.empty(nnz, dtype=grad.dtype, device=grad.device)
            step = max(
                1, 2**22 // max(1, x.shape[1])
            )  # bounds the [chunk, d] temporaries
            for s in range(0, nnz, step):
                r, c = ctx.row[s : s + step], ctx.col[s : s + step]
                g_vals[s : s + step] = (grad[r] * x[c]).sum(-1)
        if ctx.needs_input_grad[1]:
            g_x = torch.sparse.mm(ctx.adj, grad)
        return g_vals, g_x, None, None, None


def _spmm(
    vals: torch.Tensor,
    x: torch.Tensor,
    crow: torch.Tensor,
    col: torch.Tensor,
    row: torch.Tensor,
) -> torch.Tensor:
    if torch.is_grad_enabled() and (vals.requires_grad or x.requires_grad):
        return _ValuedSymSpMM.apply(vals, x, crow, col, row)
    n = crow.shape[0] - 1
    adj = torch.sparse_csr_tensor(crow, col, vals, size=(n, n), check_invariants=False)
    return torch.sparse.mm(adj, x)


@register_model(
    "tgnn_migration",
    config=TGNNMigrationConfig,
    description="Time-aware GNN: recency-decayed user-item-category propagation + attention "
    "over recent items (TGN time encoding, SR-GNN readout); streaming update().",
)
class TGNNMigration(Recommender):
    r"""Time-aware GNN for interest migration (see the module docstring for the design and
    the papers: TGN https://arxiv.org/abs/2006.10637, DGSR https://arxiv.org/abs/2104.07368,
    SR-GNN https://arxiv.org/abs/1811.00855, LightGCN https://arxiv.org/abs/2002.02126).

    Args:
        meta: graph sizes and edge behaviours.
        config: :class:`TGNNMigrationConfig`.

    Shapes:
        ``encode``: ``{"user": [U, d], "item": [I, d]}`` (``user`` = :math:`z_u`);
        ``score``: ``[B]``; ``score_all``: ``[B, I]``.

    Streaming (:class:`~gnnrec.models.streaming.StreamingRecommender`):
        ``update(events)`` needs :meth:`prepare` first. The first update snapshots the
        propagated tables with the current parameters; later ``encode`` calls in eval mode
        return that snapshot with the affected users' rows recomputed (``train()`` or
        ``load_state_dict`` drops the snapshot, so training never sees a stale one). The
        recent buffers and clocks stay advanced.

    Example:
        >>> model = build_model(ModelSpec(name="tgnn_migration"), data.meta)  # doctest: +SKIP
        >>> model.prepare(data); model.eval()  # doctest: +SKIP
        >>> affected = model.update(EventBatch.from_arrays([3], [17], [0], [1700000000]))  # doctest: +SKIP
        >>> emb = model.encode(data)  # user 3 moved, everyone else unchanged  # doctest: +SKIP
    """

    def __init__(self, meta: GraphMeta, config: TGNNMigrationConfig) -> None:
        super().__init__(meta)
        self.config = config
        self.behaviors = check_behaviors(
            config.behaviors, meta, "model.params.behaviors"
        )
        d = config.dim
        nb = max(1, len(meta.behaviors))
        self.user_emb = nn.Embedding(meta.num_users, d)
        self.item_emb = nn.Embedding(meta.num_items, d)
        self.use_categories = config.category_edges and meta.num_categories > 0
        self.cat_emb = (
            nn.Embedding(meta.num_categories, d) if self.use_categories else None
        )
        tau = self._tau_init(config, meta)
        log_tau = torch.log(torch.tensor(tau, dtype=torch.float32))
        if config.decay == "learned":
            self.log_tau = nn.Parameter(log_tau)
        else:
            self.register_buffer("log_tau", log_tau)
        if config.readout == "attention":
            self.w_q = nn.Linear(d, d, bias=False)
            self.w_k = nn.Linear(d, d, bias=False)
            self.w_t = nn.Linear(config.time_dim, d, bias=False)
            self.beh_emb = nn.Embedding(nb, d)
            # TGAT/TGN-style frequencies, geometric from 10 to 1/1000 per hour
            self.time_omega = nn.Parameter(torch.logspace(1.0, -3.0, config.time_dim))
            self.time_phi = nn.Parameter(torch.zeros(config.time_dim))
            self.log_gamma = nn.Parameter(torch.tensor(math.log(config.gamma)))
        self._graph: dict[str, torch.Tensor] | None = None
        self._snapshot: dict[str, torch.Tensor] | None = None
        self.reset_parameters()

    @staticmethod
    def _tau_init(config: TGNNMigrationConfig, meta: GraphMeta) -> list[float]:
        from gnnrec.errors import ConfigError

        names = meta.behaviors if meta.behaviors else ("_",)
        if isinstance(config.tau_hours, dict):
            unknown = [b for b in config.tau_hours if b not in meta.behaviors]
            if unknown:
                raise ConfigError(
                    f"model.params.tau_hours: behaviour '{unknown[0]}' is not an edge type of the "
                    f"training graph (graph edge behaviours: {list(meta.behaviors)})"
                )
            missing = [b for b in meta.behaviors if b not in config.tau_hours]
            if missing:
                raise ConfigError(
                    f"model.params.tau_hours: no value for behaviour '{missing[0]}'"
                )
            values = [float(config.tau_hours[b]) for b in names]
        else:
            values = [float(config.tau_hours)] * len(names)
        bad = [v for v in values if not v > 0]
        if bad:
            raise ConfigError(
                f"model.params.tau_hours: time constants must be > 0, got {bad[0]}"
            )
        return values

    def reset_parameters(self) -> None:
        for emb in (self.user_emb, self.item_emb, self.cat_emb):
            if emb is not None:
                nn.init.normal_(emb.weight, std=self.config.init_std)
        if self.config.readout == "attention":
            nn.init.normal_(self.beh_emb.weight, std=self.config.init_std)

    # ------------------------------------------------------------------ structure
    def prepare(self, data: TrainData) -> None:
        """Cache the weighted-graph pattern, edge ages and the recent-item tables."""
        meta = self.meta
        nu, ni = meta.num_users, meta.num_items
        nc = meta.num_categories if self.use_categories else 0
        n = nu + ni + nc
        dev = data.device
        names = self.behaviors if self.behaviors is not None else meta.behaviors
        us, its, bs, ts = [], [], [], []
        for name in names:  # a handful of behaviours; the work inside is vectorised
            ei = data.edge_index[name].detach().cpu().numpy()
            us.append(ei[0])
            its.append(ei[1])
            bs.append(np.full(ei.shape[1], meta.behaviors.index(name), dtype=np.int64))
            ts.append(data.edge_ts[name].detach().cpu().numpy().astype(np.int64))
        user = np.concatenate(us).astype(np.int64) if us else np.zeros(0, np.int64)
        item = np.concatenate(its).astype(np.int64) if its else np.zeros(0, np.int64)
        beh = np.concatenate(bs) if bs else np.zeros(0, np.int64)
        t = np.concatenate(ts) if ts else np.zeros(0, np.int64)

        # the user's clock: time of their latest training event (0 without events)
        lowest = np.iinfo(np.int64).min
        latest = np.full(nu, lowest, dtype=np.int64)
        np.maximum.at(latest, user, t)
        clock = np.where(latest == lowest, 0, latest)
        dt_hours = (clock[user] - t).astype(np.float64) / _HOUR

        # unique user-item pairs (graph entries), each behaviour edge points to its pair
        key = user * max(ni, 1) + item
        pair_key, edge_pair = np.unique(key, return_inverse=True)
        a_ui = pair_key // max(ni, 1)
        b_ui = nu + pair_key % max(ni, 1)
        cat = data.item_category.detach().cpu().numpy().astype(np.int64)
        if nc:
            known = np.flatnonzero(cat >= 0)
            a_ic, b_ic = nu + known, nu + ni + cat[known]
        else:
            a_ic = b_ic = np.zeros(0, dtype=np.int64)
        a = np.concatenate([a_ui, a_ic])
        b = np.concatenate([b_ui, b_ic])
        p_all = a.size
        row = np.concatenate([a, b])
        col = np.concatenate([b, a])
        perm = np.argsort(row * n + col, kind="stable")
        crow = np.zeros(n + 1, dtype=np.int64)
        crow[1:] = np.cumsum(np.bincount(row, minlength=n))
        entry_pair = np.concatenate([np.arange(p_all), np.arange(p_all)])[perm]

        rec_i, rec_b, rec_t, rec_m = recent_table(
            user, item, beh, t, np.arange(nu), self.config.recent_k
        )

        def tt(x: np.ndarray, dtype: torch.dtype = torch.long) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(x)).to(device=dev, dtype=dtype)

        self._graph = {
            "crow": tt(crow),
            "col": tt(col[perm]),
            "row": tt(row[perm]),
            "entry_pair": tt(entry_pair),
            "pair_a": tt(a),
            "pair_b": tt(b),
            "num_ui": torch.tensor(a_ui.size),
            "edge_pair": tt(edge_pair),
            "edge_beh": tt(beh),
            "edge_dt": tt(dt_hours, torch.float32),
            "clock": tt(clock),
            "rec_item": tt(rec_i),
            "rec_beh": tt(rec_b),
            "rec_ts": tt(rec_t),
            "rec_mask": tt(rec_m, torch.bool),
            "item_cat": tt(cat),
        }
        self._snapshot = None

    def _require_graph(self) -> dict[str, torch.Tensor]:
        if self._graph is None:
            raise GnnrecError("tgnn_migration: call prepare(data) before encode/update")
        return self._graph

    def tau_hours(self) -> torch.Tensor:
        """Current time constants ``[num behaviours]`` in hours (clamped to 1 min .. 10 y)."""
        return torch.exp(self.log_tau.clamp(_LOG_TAU_MIN, _LOG_TAU_MAX))

    def edge_weights(self) -> torch.Tensor:
        """Per (user, item, behaviour) training edge weight ``[E]`` (graph edge order)."""
        g = self._require_graph()
        if self.config.decay == "none":
            return torch.ones_like(g["edge_dt"])
        tau = self.tau_hours().to(g["edge_dt"].device)[g["edge_beh"]]
        return decay_weights(g["edge_dt"], tau, self.config.weight_floor)

    def adjacency_values(self) -> torch.Tensor:
        """Values ``[nnz]`` of the normalised weighted adjacency (CSR order)."""
        g = self._require_graph()
        w_edge = self.edge_weights()
        num_ui = int(g["num_ui"])
        p_all = g["pair_a"].shape[0]
        w_ui = torch.zeros(num_ui, dtype=w_edge.dtype, device=w_edge.device).index_add(
            0, g["edge_pair"], w_edge
        )
        w_ic = torch.full(
            (p_all - num_ui,),
            self.config.category_weight,
            dtype=w_edge.dtype,
            device=w_edge.device,
        )
        w = torch.cat([w_ui, w_ic])
        n = g["crow"].shape[0] - 1
        deg = torch.zeros(n, dtype=w.dtype, device=w.device)
        deg = deg.index_add(0, g["pair_a"], w).index_add(0, g["pair_b"], w)
        dinv = torch.where(
            deg > 0, deg.clamp(min=1e-12).pow(-0.5), torch.zeros_like(deg)
        )
        pair_val = w * dinv[g["pair_a"]] * dinv[g["pair_b"]]
        return pair_val[g["entry_pair"]]

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Layer-mean embeddings ``(h_user [U, d], h_item [I, d], h_cat [C, d] or [0, d])``."""
        g = self._require_graph()
        parts = [self.user_emb.weight, self.item_emb.weight]
        if self.cat_emb is not None:
            parts.append(self.cat_emb.weight)
        x = torch.cat(parts)
        vals = self.adjacency_values()
        out = x
        h = x
        for _ in range(self.config.num_layers):
            h = _spmm(vals, h, g["crow"], g["col"], g["row"])
            out = out + h
        out = out / (self.config.num_layers + 1)
        nu, ni = self.meta.num_users, self.meta.num_items
        h_cat = (
            out[nu + ni :]
            if self.cat_emb is not None
            else out.new_zeros((0, out.shape[1]))
        )
        return out[:nu], out[nu : nu + ni], h_cat

    def time_encoding(self, dt_hours: torch.Tensor) -> torch.Tensor:
        """TGN's ``cos(ω Δt + φ)`` of ages in hours: ``[...] -> [..., time_dim]``."""
        return torch.cos(dt_hours.unsqueeze(-1) * self.time_omega + self.time_phi)

    def readout(
        self,
        h_user: torch.Tensor,
        h_item: torch.Tensor,
        h_cat: torch.Tensor,
        users: torch.Tensor,
    ) -> torch.Tensor:
        """:math:`z_u = h_u + \\gamma r_u` for ``users`` ``[n]`` -> ``[n, d]``."""
        hu = h_user[users]
        if self.config.readout == "none":
            return hu
        g = self._require_graph()
        items, beh, mask = (
            g["rec_item"][users],
            g["rec_beh"][users],
            g["rec_mask"][users],
        )
        dt = (g["clock"][users].unsqueeze(1) - g["rec_ts"][users]).to(hu.dtype) / _HOUR
        value = h_item[items]  # [n, K, d]
        if h_cat.shape[0] > 0:
            c = g["item_cat"][items]
            value = value + h_cat[c.clamp(min=0)] * (c >= 0).unsqueeze(-1).to(hu.dtype)
        key = value + self.w_t(self.time_encoding(dt)) + self.beh_emb(beh)
        q = self.w_q(hu)  # [n, d]
        logits = (self.w_k(key) * q.unsqueeze(1)).sum(-1) / math.sqrt(hu.shape[1])
        logits = logits.masked_fill(~mask, float("-inf"))
        has = mask.any(1, keepdim=True)
        # users without training items: all -inf -> NaN softmax; give them r_u = 0
        alpha = torch.softmax(torch.where(has, logits, torch.zeros_like(logits)), dim=1)
        alpha = torch.where(mask, alpha, torch.zeros_like(alpha))
        r = (alpha.unsqueeze(-1) * value).sum(1)
        return hu + torch.exp(self.log_gamma) * r

    def encode(self, data: TrainData) -> EmbDict:
        if self._snapshot is not None and not self.training:
            # a copy: a later update() changes the snapshot's rows in place
            return {
                "user": self._snapshot["user"].clone(),
                "item": self._snapshot["item"],
            }
        h_user, h_item, h_cat = self.propagate()
        z = self.readout(
            h_user,
            h_item,
            h_cat,
            torch.arange(self.meta.num_users, device=h_user.device),
        )
        return {"user": z, "item": h_item}

    def regularization(self, emb: EmbDict, batch: PairBatch) -> torch.Tensor:
        return batch_ego_l2(self.config.reg, self.user_emb, self.item_emb, batch)

    # ------------------------------------------------------------------ streaming
    def train(self, mode: bool = True) -> TGNNMigration:
        if mode:
            self._snapshot = None  # parameters are about to change
        return super().train(mode)

    def load_state_dict(self, *args: Any, **kwargs: Any) -> Any:
        self._snapshot = None
        return super().load_state_dict(*args, **kwargs)

    @torch.no_grad()
    def update(self, events: EventBatch) -> set[int]:
        """Fold new events into the affected users' readouts (no gradient steps).

        Appends the events to the users' recent buffers (an item already there moves to
        its new time), advances their clocks, and recomputes their :math:`z_u` from the
        frozen propagated tables. Returns the affected user indices.

        Raises:
            GnnrecError: :meth:`prepare` was not called.
            DataError: an unknown user, item or behaviour (nothing is applied then).
        """
        g = self._require_graph()
        events.validate(self.meta)
        if len(events) == 0:
            return set()
        if self._snapshot is None:
            h_user, h_item, h_cat = self.propagate()
            z = self.readout(
                h_user,
                h_item,
                h_cat,
                torch.arange(self.meta.num_users, device=h_user.device),
            )
            self._snapshot = {
                "user": z,
                "item": h_item,
                "h_user": h_user,
                "h_cat": h_cat,
            }
        ev_u = events.user.cpu().numpy()
        ev_i = events.item.cpu().numpy()
        ev_b = events.behavior.cpu().numpy()
        ev_t = events.ts.cpu().numpy()
        rows = np.unique(ev_u)
        rows_t = torch.from_numpy(rows).to(g["rec_item"].device)
        # existing buffer entries of the affected users + the new events, re-ranked
        m = g["rec_mask"][rows_t].cpu().numpy()
        rr = np.repeat(rows, m.sum(1))
        old_i = g["rec_item"][rows_t].cpu().numpy()[m]
        old_b = g["rec_beh"][rows_t].cpu().numpy()[m]
        old_t = g["rec_ts"][rows_t].cpu().numpy()[m]
        ri, rb, rt, rm = recent_table(
            np.concatenate([rr, ev_u]),
            np.concatenate([old_i, ev_i]),
            np.concatenate([old_b, ev_b]),
            np.concatenate([old_t, ev_t]),
            rows,
            self.config.recent_k,
        )
        dev = g["rec_item"].device
        g["rec_item"][rows_t] = torch.from_numpy(ri).to(dev)
        g["rec_beh"][rows_t] = torch.from_numpy(rb).to(dev)
        g["rec_ts"][rows_t] = torch.from_numpy(rt).to(dev)
        g["rec_mask"][rows_t] = torch.from_numpy(rm).to(dev)
        new_clock = np.full(rows.size, np.iinfo(np.int64).min, dtype=np.int64)
        np.maximum.at(new_clock, np.searchsorted(rows, ev_u), ev_t)
        g["clock"][rows_t] = torch.maximum(
            g["clock"][rows_t], torch.from_numpy(new_clock).to(dev)
        )
        s = self._snapshot
        s["user"][rows_t] = self.readout(s["h_user"], s["item"], s["h_cat"], rows_t)
        return set(rows.tolist())

    def extra_repr(self) -> str:
        return (
            f"num_users={self.meta.num_users}, num_items={self.meta.num_items}, "
            + super().extra_repr()
        )
