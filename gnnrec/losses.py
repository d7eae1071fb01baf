"""Losses as functions of score tensors: ``pos [B]`` and ``neg [B, n]``."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from gnnrec.errors import ConfigError


def bpr(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Bayesian personalised ranking: ``-mean log σ(s⁺ - s⁻)`` over all negatives."""
    return -F.logsigmoid(pos.unsqueeze(1) - neg).mean()


def bce(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with label 1 for positives and 0 for sampled negatives,
    averaged per positive (negatives summed then divided by their count)."""
    pos_loss = F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos))
    neg_loss = F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg))
    return pos_loss + neg_loss


_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {"bpr": bpr, "bce": bce}


def get(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    try:
        return _LOSSES[name]
    except KeyError:
        raise ConfigError(f"train.loss: unknown loss '{name}' (known: {', '.join(_LOSSES)})") from None
