"""Explanations of recommendations as paths in the training graph (:mod:`gnnrec.explain.paths`)."""
