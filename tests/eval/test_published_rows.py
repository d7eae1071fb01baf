"""gnnrec.reports.tables.published_rows: the ours / published / ratio rows of the reproduction tables."""

from __future__ import annotations

from gnnrec.reports.tables import published_rows

REF = {
    "compare_to": "LightGCN",
    "published": [{"source": "paper", "metrics": {"recall@20": 0.2, "ndcg@20": 0.1}}],
}


def test_rows_with_and_without_a_run() -> None:
    assert published_rows("lightgcn", REF, {"recall@20": 0.19, "ndcg@20": 0.11}) == [
        "| lightgcn | LightGCN | paper | recall@20 | 0.1900 | 0.2000 | 0.950 |",
        "| lightgcn | LightGCN | paper | ndcg@20 | 0.1100 | 0.1000 | 1.100 |",
    ]
    # not run, or a metric the run lacks: a dash, no ratio; metric names formatted
    assert published_rows("x[v=1]", REF, None, str.upper, ratio_digits=2) == [
        "| x[v=1] | LightGCN | paper | RECALL@20 | – | 0.2000 | – |",
        "| x[v=1] | LightGCN | paper | NDCG@20 | – | 0.1000 | – |",
    ]
    assert published_rows("m", REF, {"recall@20": 0.1})[1].endswith("| – | 0.1000 | – |")
