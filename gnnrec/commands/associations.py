"""``gnnrec associations RUN_DIR``: interest association outputs of a trained encoder.

Writes, for a finished run whose model has item embeddings:

* the category–category association graph of
  :func:`gnnrec.eval.interest.category_association_graph` (each category linked to its
  ``--top-k`` most similar categories by item-embedding centroids; edges carry the cosine
  ``weight`` and ``co_users``, the training users who interacted with both) as GraphML and
  as a CSV edge list;
* every user's ``--top`` category interest weights of
  :func:`gnnrec.eval.interest.user_category_interest` as CSV (user ids as in the run's
  vocabulary, so pseudonymised when the run pseudonymised them).

and prints the strongest associations.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the ``associations`` sub-command."""
    p = sub.add_parser(
        "associations",
        help="category association graph and per-user category interests of a finished run",
        description="Interest association outputs of a trained model: the category-category "
        "association graph (GraphML + CSV edge list) and each user's top category interest "
        "weights (CSV), written into --out (default RUN_DIR/associations).",
    )
    p.add_argument("run_dir", help="a run directory written by `gnnrec run`")
    p.add_argument("--out", help="output directory (default RUN_DIR/associations)")
    p.add_argument("--top-k", type=int, default=5, metavar="K", help="associated categories per category (default 5)")
    p.add_argument("--min-weight", type=float, default=0.0, help="minimum cosine similarity of an edge (default 0)")
    p.add_argument("--top", type=int, default=5, metavar="N", help="categories per user in user_interests.csv (default 5)")
    p.add_argument("--show", type=int, default=10, metavar="N", help="strongest associations to print (default 10)")
    p.set_defaults(func=cmd_associations)


def cmd_associations(args: argparse.Namespace) -> int:
    """Handler of ``gnnrec associations``."""
    from pathlib import Path

    import polars as pl
    from rich.table import Table

    from gnnrec.cli import _console
    from gnnrec.errors import ConfigError, GnnrecError
    from gnnrec.eval.interest import category_association_graph, export_graph, user_category_interest
    from gnnrec.runs import load_run

    for flag, value in (("--top-k", args.top_k), ("--top", args.top)):
        if value < 1:
            raise ConfigError(f"{flag} must be >= 1, got {value}")
    run = load_run(args.run_dir)
    if run.table.num_categories == 0:
        raise GnnrecError(f"{args.run_dir}: the run's data has no item categories, so there are no associations")
    if not isinstance(run.emb, dict) or "item" not in run.emb:
        raise GnnrecError(
            f"{args.run_dir}: model '{run.cfg.model.name}' has no item embeddings; category associations "
            "need an embedding model (e.g. mf_bpr, lightgcn, ngcf)"
        )
    out = Path(args.out) if args.out else run.run_dir / "associations"
    out.mkdir(parents=True, exist_ok=True)
    names = run.table.category_ids.astype(str)
    graph = category_association_graph(run.emb, run.data, top_k=args.top_k, min_weight=args.min_weight, names=names)
    export_graph(graph, out / "categories.graphml")
    export_graph(graph, out / "categories.csv")

    interests = user_category_interest(run.model, run.emb, run.data, top=args.top)
    user_ids = run.table.user_ids.astype(str)
    interests.with_columns(
        pl.Series("user_id", user_ids[interests["user"].to_numpy()]),
        pl.Series("category_id", names[interests["category"].to_numpy()]),
    ).select(["user_id", "category_id", "weight"]).write_csv(out / "user_interests.csv")

    edges = sorted(graph.edges(data=True), key=lambda e: -e[2]["weight"])[: max(args.show, 0)]
    t = Table(title=f"strongest category associations ({run.cfg.model.name}, {graph.number_of_edges()} edges)")
    for col in ("category", "category ", "cosine", "co-users"):
        t.add_column(col, justify="right" if col in ("cosine", "co-users") else "left")
    for a, b, attr in edges:
        t.add_row(names[a], names[b], f"{attr['weight']:.3f}", str(attr["co_users"]))
    _console().print(t)
    print(f"wrote {out / 'categories.graphml'}, {out / 'categories.csv'}, {out / 'user_interests.csv'}")
    return 0
