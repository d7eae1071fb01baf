"""gnnrec: graph-neural-network recommendation on e-commerce behaviour logs.

The library is a chain of typed stages::

    dataset reader → RawLog → validate_log → ValidLog → build_interactions → InteractionTable
    → make_split → Split → build_train_data → TrainData → model (Recommender)
    → Trainer → Evaluator → run directory (metrics.json, per-user metrics, TensorBoard)

``gnnrec.run(cfg)`` runs the whole recipe; the ``gnnrec`` command wraps it.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
