"""Fusing item feature vectors with a model's ID/category item input.

:class:`FeatureFusion` maps ``(x [I, d], f [I, F]) -> [I, d]`` where ``x`` is the model's own
layer-0 item vector (category embedding, plus an ID embedding for items with training
events) and ``f`` the item feature matrix of :func:`gnnrec.features.attach_item_features`
(text embedding, z-normalised numeric columns):

* ``sum``: ``x + W f`` (GraphSAGE's original feature input);
* ``concat``: ``W [x ; f] + b`` — one linear layer on the concatenation;
* ``gated``: ``g ⊙ x + (1 - g) ⊙ W f`` with ``g = σ(W_g [x ; W f] + b_g)`` per dimension, so
  the model learns per item how much to trust the ID/category part versus the content part
  (for a cold item, whose ID part is absent, the gate can lean on content).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["FUSIONS", "FeatureFusion"]

FUSIONS = ("sum", "concat", "gated")


class FeatureFusion(nn.Module):
    """``(x [N, d], f [N, F]) -> [N, d]`` by ``mode`` (see module docstring).

    Args:
        dim: size ``d`` of ``x`` and of the output.
        feat_dim: size ``F`` of the features.
        mode: ``"sum"``, ``"concat"`` or ``"gated"``.
    """

    def __init__(self, dim: int, feat_dim: int, mode: str = "concat") -> None:
        super().__init__()
        if mode not in FUSIONS:
            raise ValueError(f"fusion must be one of {list(FUSIONS)}, got '{mode}'")
        self.mode, self.dim, self.feat_dim = mode, int(dim), int(feat_dim)
        if mode == "concat":
            self.proj = nn.Linear(dim + feat_dim, dim)
        else:
            self.proj = nn.Linear(feat_dim, dim)
        self.gate = nn.Linear(2 * dim, dim) if mode == "gated" else None

    def forward(self, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        f = f.to(x.dtype)
        if self.mode == "sum":
            return x + self.proj(f)
        if self.mode == "concat":
            return self.proj(torch.cat([x, f], dim=-1))
        assert self.gate is not None
        h = self.proj(f)
        g = torch.sigmoid(self.gate(torch.cat([x, h], dim=-1)))
        return g * x + (1 - g) * h

    def extra_repr(self) -> str:
        return f"mode={self.mode}, dim={self.dim}, feat_dim={self.feat_dim}"
