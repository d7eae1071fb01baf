"""Sequential and session models (GRU4Rec, SASRec, SR-GNN); importing registers them."""

from gnnrec.models.sequential import gru4rec, sasrec, srgnn  # noqa: F401  isort: skip
from gnnrec.models.sequential.base import (
    SeqBatch,
    SequentialConfig,
    SequentialRecommender,
)

__all__ = ["SeqBatch", "SequentialConfig", "SequentialRecommender"]
