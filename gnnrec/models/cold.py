"""Cold-start capability check: refuse, before training, a model that would score cold
users or items from untrained ID embeddings (i.e. randomly).

Every model declares :attr:`~gnnrec.models.base.Recommender.cold_start` (``"none"``,
``"user"``, ``"item"`` or ``"both"``): which entities *without any training event* it can
score meaningfully. The split says what the evaluation needs:

* ``split.mode: cold_item`` — every truth item has no training event: the model must
  declare ``item`` or ``both``;
* ``split.mode: cold_user`` with ``split.cold_k: 0`` — cold users have no training event:
  ``user`` or ``both``. With ``cold_k >= 1`` a cold user has ``k`` training events (edges in
  the graph, positives when they are of a positive behaviour), so any model can score them:
  it is a short-history user, which is what the history-length buckets measure.
"""

from __future__ import annotations

from gnnrec.data.types import Split
from gnnrec.errors import GnnrecError
from gnnrec.models.base import MODELS, Recommender

__all__ = ["check_cold_start", "models_for"]


def models_for(entity: str) -> list[str]:
    """Registered model names that can score cold ``entity`` (``"user"`` or ``"item"``)."""
    from gnnrec import models as _models  # noqa: F401  (populates the registry)

    return [n for n in MODELS.names() if MODELS.get(n).cold_start in (entity, "both")]


def check_cold_start(model: Recommender | type[Recommender], name: str, split: Split) -> None:
    """Raise if ``model`` cannot score the cold entities ``split`` evaluates.

    Args:
        model: the model (or its class); its ``cold_start`` attribute is read.
        name: the registry name, for the message.
        split: the split (``mode`` and ``info["cold_k"]``).

    Raises:
        GnnrecError: a cold-item split with a model without cold-item support, or a
            cold-user split with ``cold_k = 0`` and a model without cold-user support.
    """
    cs = model.cold_start
    how = "embeddings are learned per ID" if model.trainable else "scores come from its own training events"
    if split.mode == "cold_item" and cs not in ("item", "both"):
        raise GnnrecError(
            f"model '{name}' cannot score cold items: an item's {how}, and a cold item has no "
            f"training event; use {', '.join(models_for('item'))} (models with category/text "
            "features), or another split.mode"
        )
    k = int(split.info.get("cold_k", 0))
    if split.mode == "cold_user" and k == 0 and cs not in ("user", "both"):
        raise GnnrecError(
            f"model '{name}' cannot score cold users with no training event (split.cold_k=0): a "
            f"user's {how}; set split.cold_k >= 1 (a cold user's first k events then are training "
            f"edges), or use {', '.join(models_for('user'))}"
        )
