"""Model registry: importing this package registers every built-in model."""

from gnnrec.models.base import MODELS, PairBatch, Recommender, build_model, register_model

# Imported for their side effect: each module registers its models in MODELS.
from gnnrec.models.baselines import itemknn, mf_bpr, neumf, pop  # noqa: F401  isort: skip
from gnnrec.models.baselines import content_mf, pop_category  # noqa: F401  isort: skip
from gnnrec.models import encoders  # noqa: F401  isort: skip  (registers the graph encoders)
from gnnrec.models import sequential  # noqa: F401  isort: skip  (gru4rec, sasrec, srgnn)

__all__ = ["MODELS", "PairBatch", "Recommender", "build_model", "register_model"]
