"""Exploration vs exploitation on top of any model's scores.

* :mod:`gnnrec.explore.rerank` — re-rankers over a score matrix ``[B, I]`` (MMR, category
  caps, epsilon-greedy, LinUCB-style confidence bonus, Thompson sampling);
* :mod:`gnnrec.explore.metrics` — beyond-accuracy metrics (coverage, category coverage,
  intra-list diversity, novelty, serendipity);
* :mod:`gnnrec.explore.evaluate` — the ``beyond_accuracy`` / ``rerank`` blocks of a run's
  ``metrics.json``;
* :mod:`gnnrec.explore.replay` — offline time-ordered replay of held-out events.
"""
