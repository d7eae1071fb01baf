"""Graph encoders (same :class:`~gnnrec.models.base.Recommender` protocol as the baselines).

Importing this package registers every encoder in :data:`~gnnrec.models.base.MODELS`.
Shared sparse propagation helpers live in :mod:`gnnrec.models.encoders.propagation`.
"""

# Imported for their side effect: each module registers its models in MODELS.
from gnnrec.models.encoders import lightgcn, ngcf  # noqa: F401  isort: skip
from gnnrec.models.encoders import rgcn, sage  # noqa: F401  isort: skip
from gnnrec.models.encoders import mb_cascade  # noqa: F401  isort: skip
from gnnrec.models.encoders import gf_cf  # noqa: F401  isort: skip
from gnnrec.models.encoders import tgnn_migration  # noqa: F401  isort: skip
