"""``gnnrec replay CONFIG.yaml``: train the config's model, then replay the held-out log in time
order with every exploration strategy of ``replay.strategies`` (see :mod:`gnnrec.explore.replay`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "replay",
        help="offline replay: exploration strategies vs pure exploitation over time",
        description="Train and evaluate CONFIG.yaml's model (a normal run directory), then replay the "
        "held-out events in time order (replay.steps slices): at each step recommend replay.k items "
        "to the users with an event using each strategy of replay.strategies (topk, mmr, category, "
        "epsilon, linucb, thompson, each over its knob values), count hits and hits in categories "
        "new to the user, reveal the events (and update streaming models). Writes replay.csv, "
        "replay.json, replay_summary.csv and PNGs (cumulative reward, discoveries, accuracy–"
        "diversity trade-off) into the run directory. Use a temporal split for a faithful replay.",
    )
    p.add_argument(
        "config",
        help="experiment YAML with a replay: section (see experiments/)",
    )
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value")
    p.add_argument("--out", help="run directory (default: <out_dir>/<name>-<timestamp>)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_replay)


def cmd_replay(args: argparse.Namespace) -> int:
    import torch
    from rich.table import Table

    from gnnrec.cli import _console
    from gnnrec.config import load_config
    from gnnrec.explore.replay import KNOB_NAMES, check_replay_config, replay_suite
    from gnnrec.models import build_model
    from gnnrec.runner import make_run_dir, prepare_data, run_model

    cfg = load_config(args.config, list(args.set or []))
    check_replay_config(cfg)  # before training
    console = _console()
    run_dir = Path(args.out) if args.out else make_run_dir(cfg.out_dir, cfg.name)
    run_dir.mkdir(parents=True, exist_ok=True)
    prepared = prepare_data(cfg)
    res = run_model(cfg, prepared, run_dir, progress=not args.quiet)
    model = build_model(cfg.model, prepared.data.meta)
    model.prepare(prepared.data)
    model.load_state_dict(torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True))
    out = replay_suite(cfg, model, prepared, run_dir)
    table = Table(
        title=f"replay: {cfg.model.name} on {cfg.data.dataset}, {out['log']['events']} events, "
        f"{out['log']['steps']} steps, K={out['log']['k']}"
    )
    for col in (
        "strategy",
        "knob",
        "hits",
        "hit rate",
        "new-cat hits",
        "new cats shown",
        "ILD",
        "coverage",
    ):
        table.add_column(col)
    for r in out["summary"]:
        knob = "-" if r["strategy"] == "topk" else f"{KNOB_NAMES[r['strategy']]}={r['knob']:g}"
        table.add_row(
            r["strategy"],
            knob,
            str(r["hits"]),
            f"{r['hit_rate']:.4f}",
            str(r["new_category_hits"]),
            str(r["new_categories_shown"]),
            f"{r['ild']:.3f}",
            f"{r['coverage']:.3f}",
        )
    console.print(table)
    console.print(
        f"test recall@{max(cfg.eval.ks)} of the model: {res.metrics['test'].get(f'recall@{max(cfg.eval.ks)}', float('nan')):.4f}"
    )
    console.print(f"run directory: {run_dir}")
    return 0
