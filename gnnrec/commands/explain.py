"""``gnnrec explain RUN_DIR --user ID --item ID``: top training-graph paths from a user to an item."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "explain",
        help="explain a (user, item) pair by the top paths of a run's training graph",
        description="Rebuild the training graph of a finished run (config.yaml + split.npz) and print "
        "the top paths of at most 3 hops from the user to the item (user → item → category ← item, "
        "user → item ← user → item, or a direct training edge), scored by the product of the "
        "LightGCN propagation weights 1/sqrt(d_a d_b) of their edges (times the model's item "
        "similarity when the model has item embeddings). Only training edges are used. "
        "IDs are the raw ids of the run's vocab/ files.",
    )
    p.add_argument("run_dir", help="a run directory written by `gnnrec run`")
    p.add_argument("--user", required=True, help="user id (as in vocab/users.csv)")
    p.add_argument("--item", required=True, help="item id (as in vocab/items.csv)")
    p.add_argument("--top", type=int, default=5, help="number of paths (default 5)")
    p.add_argument(
        "--mode",
        choices=["auto", "structural", "model"],
        default="auto",
        help="path score: structural (propagation weights), model (× item similarity), auto",
    )
    p.add_argument("--graphml", metavar="PATH", help="write the paths' subgraph as GraphML")
    p.add_argument("--plot", metavar="PATH.png", help="write a PNG of the paths' subgraph")
    p.set_defaults(func=cmd_explain)


def _lookup(ids: Any, value: str, what: str, flag: str) -> int:
    import numpy as np

    hit = np.flatnonzero(ids.astype(str) == value)
    if hit.size == 0:
        sample = ", ".join(ids.astype(str)[:3].tolist())
        from gnnrec.errors import GnnrecError

        raise GnnrecError(
            f"{flag}: unknown {what} id '{value}' (the run has {ids.shape[0]} {what}s, e.g. {sample})"
        )
    return int(hit[0])


def cmd_explain(args: argparse.Namespace) -> int:
    from gnnrec.errors import GnnrecError
    from gnnrec.explain.paths import (
        Explainer,
        TrainGraph,
        format_path,
        item_embeddings,
        paths_to_networkx,
        plot_subgraph,
    )

    if args.top < 1:
        raise GnnrecError(f"--top must be at least 1, got {args.top}")
    from gnnrec.runs import load_run

    ctx = load_run(args.run_dir, model="none" if args.mode == "structural" else "optional")
    table = ctx.table
    user = _lookup(table.user_ids, args.user, "user", "--user")
    item = _lookup(table.item_ids, args.item, "item", "--item")
    graph = TrainGraph.from_train_data(ctx.data, funnel=tuple(table.behaviors))
    explainer = Explainer(graph, item_embeddings(ctx))
    mode = explainer.resolve_mode(args.mode)
    names = {
        "user": table.user_ids.astype(str),
        "item": table.item_ids.astype(str),
        "category": table.category_ids.astype(str),
    }
    paths = explainer.explain(user, item, top=args.top, mode=mode)
    if ctx.note:
        print(f"note: {ctx.note}")
    if not paths:
        print(
            f"no path of at most 3 hops connects user {args.user} and item {args.item} in the training graph"
        )
        sugg = explainer.suggest(user, top=5)
        if sugg.size:
            print("items that do connect to this user: " + ", ".join(names["item"][sugg].tolist()))
        else:
            print("the user has no training interactions, so no item connects")
        return 0
    print(
        f"top {len(paths)} paths from user {args.user} to item {args.item} (score: {mode}; training graph only)"
    )
    for rank, p in enumerate(paths, 1):
        print(f"{rank:>2}. [{p.score:.4g}] {p.kind:<13} {format_path(p, names)}")
    if args.graphml or args.plot:
        g = paths_to_networkx(paths, names)
        if args.graphml:
            import networkx as nx

            nx.write_graphml(g, args.graphml)
            print(f"graphml: {args.graphml}")
        if args.plot:
            plot_subgraph(g, args.plot, title=f"user {args.user} → item {args.item}")
            print(f"plot: {args.plot}")
    return 0
