"""Graph encoders (same :class:`~gnnrec.models.base.Recommender` protocol as the baselines).

Importing this package registers every encoder in :data:`~gnnrec.models.base.MODELS`.
Shared sparse propagation helpers live in :mod:`gnnrec.models.encoders.propagation`.
"""

# Imported for their side effect: each module registers its models in MODELS.
from gnnrec.models.encoders import lightgcn, ngcf  # noqa: F401  isort: skip
from gnnrec.models.base import MODELS  # noqa: E402  isort: skip

# rgcn / graphsage need torch_geometric (~2 s to import): registered on first use
MODELS.defer("gnnrec.models.encoders.rgcn", "rgcn")
MODELS.defer("gnnrec.models.encoders.sage", "graphsage")
from gnnrec.models.encoders import mb_cascade  # noqa: F401  isort: skip
from gnnrec.models.encoders import gf_cf  # noqa: F401  isort: skip
from gnnrec.models.encoders import tgnn_migration  # noqa: F401  isort: skip
