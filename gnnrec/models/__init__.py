"""Model registry: importing this package registers every built-in model."""

from gnnrec.models.base import MODELS, PairBatch, Recommender, build_model, register_model

__all__ = ["MODELS", "PairBatch", "Recommender", "build_model", "register_model"]
