"""Neural collaborative filtering: GMF, MLP and their fusion NeuMF."""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field, field_validator, model_validator
from torch import nn

from gnnrec.graph.data import GraphMeta, TrainData
from gnnrec.models.base import EmbDict, ModelConfig, PairBatch, Recommender, register_model
from gnnrec.models.baselines.mf_bpr import ego_l2


def _check_layers(v: tuple[int, ...]) -> tuple[int, ...]:
    if len(v) < 2 or any(w < 1 for w in v) or v[0] % 2:
        raise ValueError(
            "mlp_layers needs at least two positive sizes and an even first size "
            f"(it is the concatenated user+item embedding), got {list(v)}"
        )
    return v


class NeuMFConfig(ModelConfig):
    """Hyper-parameters of :class:`NeuMF`."""

    mode: Literal["neumf", "gmf", "mlp"] = "neumf"  # fused model, or one of its two towers alone
    dim: int = Field(64, ge=1)  # GMF embedding size (predictive factors)
    mlp_layers: tuple[int, ...] = (64, 32, 16)  # MLP widths; first = user + item embedding sizes
    dropout: float = Field(0.0, ge=0, lt=1)  # dropout after each hidden MLP layer (paper: none)
    reg: float = Field(0.0, ge=0)  # L2 on the batch's embeddings, as in mf_bpr (paper: none)
    init_std: float = Field(0.01, gt=0)  # std of the normal embedding init (paper: 0.01)
    chunk_elements: int = Field(2**24, ge=1)  # bound on users x items x width per score_all chunk

    @field_validator("mlp_layers")
    @classmethod
    def _layers(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        return _check_layers(v)


class MLPConfig(ModelConfig):
    """Hyper-parameters of the pure MLP baseline (:class:`MLP`)."""

    dim: int | None = Field(None, ge=1)  # user/item embedding size; must be mlp_layers[0] / 2 if set
    mlp_layers: tuple[int, ...] = (64, 32, 16)  # MLP widths; first = user + item embedding sizes
    dropout: float = Field(0.0, ge=0, lt=1)  # dropout after each hidden MLP layer (paper: none)
    reg: float = Field(0.0, ge=0)  # L2 on the batch's embeddings, as in mf_bpr (paper: none)
    init_std: float = Field(0.01, gt=0)  # std of the normal embedding init (paper: 0.01)
    chunk_elements: int = Field(2**24, ge=1)  # bound on users x items x width per score_all chunk

    @field_validator("mlp_layers")
    @classmethod
    def _layers(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        return _check_layers(v)

    @model_validator(mode="after")
    def _dim_matches_layers(self) -> MLPConfig:
        # the embeddings are the tower's input: user + item = mlp_layers[0]
        if self.dim is not None and 2 * self.dim != self.mlp_layers[0]:
            raise ValueError(
                f"dim ({self.dim}) is the user and item embedding size, so mlp_layers[0] must be "
                f"2 * dim = {2 * self.dim}, got mlp_layers={list(self.mlp_layers)}"
            )
        return self


@register_model(
    "neumf",
    config=NeuMFConfig,
    description="Neural matrix factorisation: GMF + MLP towers (He et al. 2017); mode gmf|mlp for one tower.",
)
class NeuMF(Recommender):
    r"""Neural collaborative filtering (NCF) with GMF and MLP towers.

    He et al., "Neural collaborative filtering", WWW 2017 (https://arxiv.org/abs/1708.05031).

    .. math::
        \phi^{GMF} = \mathbf{p}^G_u \odot \mathbf{q}^G_i, \quad
        \phi^{MLP} = a_L(\dots a_1(W_1 [\mathbf{p}^M_u; \mathbf{q}^M_i] + b_1)\dots), \quad
        s(u, i) = \mathbf{h}^\top [\phi^{GMF}; \phi^{MLP}] + b

    with ReLU activations. ``mode="gmf"`` keeps only the GMF tower, ``mode="mlp"`` only the
    MLP tower (also registered as ``mlp``). Scores are logits; train with ``train.loss: bce``
    for the paper's log loss, or BPR.

    Full ranking (``score_all``) never builds the ``[B, I, 2·d]`` concatenation: the first
    MLP layer is split as ``W_1 [p; q] = W_u p + W_i q`` (user and item parts computed once),
    the GMF part is ``(p ⊙ h_G) @ Q^T``, and only the hidden MLP activations ``[B, C, width]``
    are formed, over item chunks ``C`` sized so each holds at most ``chunk_elements``.

    Differences from the paper:
        * No pre-training of NeuMF from trained GMF and MLP models (and so no α trade-off
          between their output weights); the fused model is trained from scratch.
        * Adam on uniformly sampled negatives (``train.num_negatives``) from the generic
          trainer; the loss is ``train.loss`` (BCE = the paper's log loss, or BPR).
        * Optional dropout after hidden MLP layers and optional L2 ``reg`` on the batch's
          embeddings (both 0 by default, as in the paper).
        * Init: embeddings N(0, ``init_std``), MLP layers Xavier-uniform, output layer
          LeCun-uniform, biases zero (as in the authors' Keras code).

    Args:
        meta: graph sizes.
        config: :class:`NeuMFConfig`.

    Shapes:
        ``score``: ``[B]``; ``score_all``: ``[B, num_items]``.
    """

    def __init__(self, meta: GraphMeta, config: NeuMFConfig) -> None:
        super().__init__(meta)
        self.config: ModelConfig = config
        self.mode = config.mode
        self.use_gmf = config.mode in ("neumf", "gmf")
        self.use_mlp = config.mode in ("neumf", "mlp")
        self.dim = config.dim
        self.mlp_layers = tuple(config.mlp_layers)
        self.init_std = config.init_std
        self.reg = config.reg
        self.chunk_elements = config.chunk_elements
        out_dim = 0
        if self.use_gmf:
            self.user_gmf = nn.Embedding(meta.num_users, config.dim)
            self.item_gmf = nn.Embedding(meta.num_items, config.dim)
            out_dim += config.dim
        if self.use_mlp:
            half = self.mlp_layers[0] // 2
            self.user_mlp = nn.Embedding(meta.num_users, half)
            self.item_mlp = nn.Embedding(meta.num_items, half)
            self.tower = nn.ModuleList(
                nn.Linear(a, b) for a, b in zip(self.mlp_layers[:-1], self.mlp_layers[1:])
            )
            self.dropout = nn.Dropout(config.dropout)
            out_dim += self.mlp_layers[-1]
        self.predict = nn.Linear(out_dim, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for name in ("user_gmf", "item_gmf", "user_mlp", "item_mlp"):
            if hasattr(self, name):
                nn.init.normal_(getattr(self, name).weight, std=self.init_std)
        if self.use_mlp:
            for lin in self.tower:
                assert isinstance(lin, nn.Linear)
                nn.init.xavier_uniform_(lin.weight)
                nn.init.zeros_(lin.bias)
        bound = math.sqrt(3.0 / self.predict.in_features)  # LeCun uniform
        nn.init.uniform_(self.predict.weight, -bound, bound)
        nn.init.zeros_(self.predict.bias)

    def encode(self, data: TrainData) -> EmbDict:
        emb: EmbDict = {}
        if self.use_gmf:
            emb["user_gmf"], emb["item_gmf"] = self.user_gmf.weight, self.item_gmf.weight
        if self.use_mlp:
            emb["user_mlp"], emb["item_mlp"] = self.user_mlp.weight, self.item_mlp.weight
        return emb

    def _hidden(self, h: torch.Tensor, first_done: bool = False) -> torch.Tensor:
        """Apply the MLP tower (from its second layer when the first is already applied)."""
        for j, lin in enumerate(self.tower):
            if not (first_done and j == 0):
                h = lin(h)
            h = self.dropout(torch.relu(h))
        return h

    def score(self, emb: EmbDict, user_index: torch.Tensor, item_index: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.use_gmf:
            parts.append(emb["user_gmf"][user_index] * emb["item_gmf"][item_index])
        if self.use_mlp:
            h = torch.cat([emb["user_mlp"][user_index], emb["item_mlp"][item_index]], dim=-1)
            parts.append(self._hidden(h))
        return self.predict(torch.cat(parts, dim=-1)).squeeze(-1)

    def score_all(self, emb: EmbDict, user_index: torch.Tensor) -> torch.Tensor:
        w = self.predict.weight[0]  # [out_dim], GMF part first, then MLP part
        b = user_index.shape[0]
        out = self.predict.bias.expand(b, self.meta.num_items).clone()
        if self.use_gmf:
            # h_G^T (p ⊙ q) = (p ⊙ h_G)^T q: one matmul, no [B, I, d] tensor
            out = out + (emb["user_gmf"][user_index] * w[: self.dim]) @ emb["item_gmf"].T
        if self.use_mlp:
            w_mlp = w[-self.mlp_layers[-1] :]
            first = self.tower[0]
            assert isinstance(first, nn.Linear)
            half = self.mlp_layers[0] // 2
            # W_1 [p; q] + b_1 = (W_u p + b_1) + W_i q
            user_part = emb["user_mlp"][user_index] @ first.weight[:, :half].T + first.bias  # [B, h1]
            item_part = emb["item_mlp"] @ first.weight[:, half:].T  # [I, h1]
            width = max(self.mlp_layers[1:])
            step = max(1, self.chunk_elements // max(1, b * width))
            chunks = []
            for s in range(0, self.meta.num_items, step):
                h = user_part.unsqueeze(1) + item_part[s : s + step].unsqueeze(0)  # [B, C, h1]
                chunks.append(self._hidden(h, first_done=True) @ w_mlp)  # [B, C]
            if chunks:
                out = out + torch.cat(chunks, dim=1)
        return out

    def regularization(self, emb: EmbDict, batch: PairBatch) -> torch.Tensor:
        total = torch.zeros((), device=batch.user.device)
        if self.reg == 0:
            return total
        for kind in ("gmf", "mlp"):
            if f"user_{kind}" in emb:
                users, items = emb[f"user_{kind}"], emb[f"item_{kind}"]
                total = total + ego_l2(self.reg, users[batch.user], items[batch.pos], items[batch.neg])
        return total

    def extra_repr(self) -> str:
        return f"num_users={self.meta.num_users}, num_items={self.meta.num_items}, " + super().extra_repr()


@register_model(
    "mlp",
    config=MLPConfig,
    description="NCF's MLP tower alone (He et al. 2017): neumf with mode=mlp.",
)
class MLP(NeuMF):
    """The MLP baseline of He et al. 2017: :class:`NeuMF` with ``mode="mlp"`` fixed.

    See :class:`NeuMF` for the model, the paper link and the differences from the paper.
    """

    def __init__(self, meta: GraphMeta, config: MLPConfig) -> None:
        super().__init__(meta, NeuMFConfig(mode="mlp", **config.model_dump(exclude={"dim"})))
        self.config = config
