"""Non-graph baselines: pop, itemknn, mf_bpr, neumf (same protocol as the GNNs)."""
