"""benchmarks/reproduce_tmall.py: the no-learning yardstick rankings, on a hand-built graph."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from gnnrec.eval.evaluator import EvalTargets
from tests.models.test_mb_cascade import make_data

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import reproduce_tmall  # noqa: E402


def test_heuristics_exact() -> None:
    # user 0 viewed item 1 four times, viewed and carted item 2 once; user 1 viewed item 3 and
    # bought items 1 and 2 in training (masked); test buys: user 0 -> 2, user 1 -> 3
    data = make_data({"view": [(0, 1), (0, 2), (1, 3)], "cart": [(0, 2)], "buy": [(1, 1), (1, 2)]}, 2, 12)
    data.edge_count["view"] = torch.tensor([4, 1, 1])
    csr = lambda rows, cols: sp.csr_matrix((np.ones(len(rows), dtype=bool), (rows, cols)), shape=(2, 12))  # noqa: E731
    test = EvalTargets(users=np.array([0, 1]), truth=csr([0, 1], [2, 3]), exclude=csr([1, 1], [1, 2]))
    out = reproduce_tmall.heuristic_records(SimpleNamespace(data=data, test=test))
    assert set(out) == set(reproduce_tmall.HEURISTICS)
    for rec in out.values():  # every test item is a viewed item: all rankings find it
        assert rec["test"]["hit@10"] == 1.0
    # own counts, user 0: item 1 log 5 = 1.61 > item 2 log 2 + log 2 = 1.39 -> the test item is
    # second; user 1: item 3 is the only unmasked viewed item -> first
    own = out["viewed_or_carted_by_own_count"]["test"]
    assert own["ndcg@10"] == pytest.approx((1 / math.log2(3) + 1.0) / 2)


def test_ratio_against_the_yardstick() -> None:
    assert reproduce_tmall._ratio({"hit@10": 0.5}, {"hit@10": 0.25}, "hit@10") == "2.00"
    assert reproduce_tmall._ratio({}, {"hit@10": 0.25}, "hit@10") == "–"
    assert reproduce_tmall._ratio({"hit@10": 0.5}, {"hit@10": 0.0}, "hit@10") == "–"
