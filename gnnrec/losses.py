"""Losses as functions of score tensors: ``pos [B]`` and ``neg [B, n]``.

``neg`` may also be ``[1, n]`` (negatives shared by the whole batch, see
``train.neg_sampling: shared``); every loss here broadcasts it against ``pos``.
Masked negatives (e.g. a shared negative that is the row's positive) are given the score
``-inf`` by the caller; only :func:`softmax` accepts them (``bpr``/``bce`` would give ``0``
resp. a finite term for them, so callers mask only for ``softmax``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from gnnrec.errors import ConfigError

__all__ = ["bce", "bpr", "get", "softmax"]


def bpr(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Bayesian personalised ranking: ``-mean log σ(s⁺ - s⁻)`` over all negatives."""
    return -F.logsigmoid(pos.unsqueeze(1) - neg).mean()


def bce(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with label 1 for positives and 0 for sampled negatives,
    averaged per positive (negatives summed then divided by their count)."""
    pos_loss = F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos))
    neg_loss = F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg))
    return pos_loss + neg_loss


def softmax(pos: torch.Tensor, neg: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    r"""Sampled-softmax (InfoNCE) loss with a temperature.

    .. math::
        \ell = \frac{1}{B} \sum_b \Big( -\frac{s^+_b}{\tau}
        + \log\big( e^{s^+_b/\tau} + \textstyle\sum_j e^{s^-_{bj}/\tau} \big) \Big)

    i.e. cross-entropy of the positive against the row's negatives. With uniformly sampled
    negatives this is the "sampled softmax loss" used with LightGCN in the literature
    (e.g. Wu et al., "On the Effectiveness of Sampled Softmax Loss for Item
    Recommendation", TOIS 2023, https://arxiv.org/abs/2201.02327; SimGCL/SGL's InfoNCE);
    uniform proposals need no log-Q correction (it is a constant per row).

    Args:
        pos: positive scores ``[B]``.
        neg: negative scores ``[B, n]`` or ``[1, n]`` (shared); ``-inf`` = masked out.
        temperature: ``τ > 0``; smaller sharpens the softmax (harder negatives weigh more).

    Returns:
        The mean loss over the ``B`` rows (a scalar).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if temperature != 1.0:  # callers that pre-scale (LightGCN: the user rows) pass 1.0: no pass over neg
        pos, neg = pos / temperature, neg / temperature
    # log(e^pos + sum_j e^neg_j) without concatenating a copy of the [B, n] scores
    lse = torch.logaddexp(pos, torch.logsumexp(neg, dim=1))
    return (lse - pos).mean()


_LOSSES: dict[str, Callable[..., torch.Tensor]] = {"bpr": bpr, "bce": bce, "softmax": softmax}

#: losses with a ``temperature`` argument (``train.temperature``)
TEMPERATURE_LOSSES = frozenset({"softmax"})


def get(name: str) -> Callable[..., torch.Tensor]:
    try:
        return _LOSSES[name]
    except KeyError:
        raise ConfigError(f"train.loss: unknown loss '{name}' (known: {', '.join(_LOSSES)})") from None
