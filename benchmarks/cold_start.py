"""Cold-start benchmark: test metrics per history-length bucket, baselines vs GNNs.

For each dataset and ``split.cold_k`` it prepares one ``cold_user`` split (20% of the eligible
users are cold: only their first ``k`` events train; warm users are evaluated by
leave-last-out, so every history-length bucket is populated) and runs every model on it with
:func:`gnnrec.runner.run_model`. Reported per run: overall test metrics, the
``metrics.json`` ``buckets.history_length`` section (history = TRAIN events, all behaviours)
and the means over cold and warm users separately (from ``per_user_test.parquet`` and
``split.info["cold_user_index"]``). Models that cannot score cold users with ``k = 0``
(``mf_bpr``, ``lightgcn``) are listed as refused (the :mod:`gnnrec.models.cold` check), not run.

Writes ``benchmarks/out/cold_start/`` (run directories) and, with ``--results``, the
committed snapshot ``benchmarks/results/cold_start.{md,json}`` + ``cold_start.png``.

    nice -n 10 python benchmarks/cold_start.py --results            # the committed run
    python benchmarks/cold_start.py --datasets amazon-grocery --ks 3 --epochs 2   # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from gnnrec.utils.runinfo import git_commit, machine_info

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out" / "cold_start"
RESULTS = ROOT / "benchmarks" / "results"
BUCKETS = ("0", "1-2", "3-5", "6-10", ">10")
METRIC = "recall@20"

#: per-dataset data section and training budget (documented in the results header)
DATASETS: dict[str, dict[str, Any]] = {
    "amazon-grocery": {
        "data": {"dataset": "amazon-grocery"},
        "train": {
            "epochs": 15,
            "batch_size": 4096,
            "lr": 5e-3,
            "patience": 3,
            "positives": "target",
        },
        "note": "whole log (14,681 users, 8,687 items, 121,892 events; 96% of items in category '0' = none)",
    },
    "taobao": {
        "data": {
            "dataset": "taobao",
            "variant": "head",
            "on_error": "drop",
            "time_range": [1511539200, 1512316800],
            "min_item_interactions": 3,
        },
        "train": {
            "epochs": 40,
            "batch_size": 8192,
            "lr": 5e-3,
            "patience": 5,
            "positives": "all",
        },
        "split": {"target_behavior": "buy"},
        "note": "head sample (814 whole users) with an item k-core of 3 (subset: items with >= 3 events, "
        "to bound the per-epoch cost on the shared CPU); target buy, every behaviour a positive",
    },
}
MODELS: dict[str, dict[str, Any]] = {
    "pop": {},
    "pop_category": {},
    "mf_bpr": {"dim": 32},
    "lightgcn": {"dim": 32, "num_layers": 2},
    "graphsage": {"dim": 32, "num_layers": 2},
    "content_mf": {"dim": 32},
}


def config_dict(dataset: str, k: int, model: str, epochs: int | None) -> dict[str, Any]:
    spec = DATASETS[dataset]
    train = dict(spec["train"])
    if epochs is not None:
        train["epochs"] = epochs
    return {
        "name": f"cold-{dataset}-k{k}-{model}",
        "seed": 0,
        "threads": 1,
        "data": dict(spec["data"]),
        "split": {
            "mode": "cold_user",
            "cold_k": k,
            "cold_ratio": 0.2,
            **spec.get("split", {}),
        },
        "model": {"name": model, "params": MODELS[model]},
        "train": train,
        "eval": {"ks": [10, 20]},
        "drift": {"history_behavior": "all", "permutations": 0},
    }


def _group_means(per_user: pl.DataFrame, cold: np.ndarray) -> dict[str, dict[str, float | int | None]]:
    is_cold = np.isin(per_user["user"].to_numpy(), cold)
    out: dict[str, dict[str, float | int | None]] = {}
    for name, m in (("cold", is_cold), ("warm", ~is_cold)):
        sub = per_user.filter(pl.Series(m))
        out[name] = {"users": int(sub.height), METRIC: float(sub[METRIC].mean()) if sub.height else None,
                     "ndcg@20": float(sub["ndcg@20"].mean()) if sub.height else None}  # fmt: skip
    return out


def run_all(
    datasets: Sequence[str],
    ks: Sequence[int],
    models: Sequence[str],
    epochs: int | None,
) -> list[dict[str, Any]]:
    from gnnrec.config import config_from_dict
    from gnnrec.errors import GnnrecError
    from gnnrec.models import MODELS as REGISTRY
    from gnnrec.models.cold import check_cold_start
    from gnnrec.runner import prepare_data, run_model

    rows: list[dict[str, Any]] = []
    for dataset in datasets:
        for k in ks:
            cfg0 = config_from_dict(config_dict(dataset, k, models[0], epochs))
            t = time.perf_counter()
            prepared = prepare_data(cfg0)
            prep_s = time.perf_counter() - t
            cold = np.asarray(prepared.split.info["cold_user_index"], dtype=np.int64)
            for model in models:
                cfg = config_from_dict(config_dict(dataset, k, model, epochs))
                row: dict[str, Any] = {"dataset": dataset, "k": k, "model": model,
                                       "cold_users": int(cold.size), "prepare_s": round(prep_s, 1)}  # fmt: skip
                try:
                    check_cold_start(REGISTRY.get(model), model, prepared.split)
                except GnnrecError as err:
                    row["refused"] = str(err).split(";")[0]
                    rows.append(row)
                    print(f"{dataset} k={k} {model}: refused", flush=True)
                    continue
                run_dir = OUT / cfg.name
                t = time.perf_counter()
                res = run_model(cfg, prepared, run_dir, progress=False)
                m = res.metrics
                per_user = pl.read_parquet(run_dir / "per_user_test.parquet")
                row.update(
                    wall_s=round(time.perf_counter() - t, 1),
                    epochs=m["epochs"],
                    best_epoch=m["best_epoch"],
                    test={key: m["test"][key] for key in ("recall@20", "ndcg@20", "recall@10", "ndcg@10")},
                    buckets={
                        b: {
                            "users": v["users"],
                            METRIC: v.get(METRIC),
                            "ndcg@20": v.get("ndcg@20"),
                        }
                        for b, v in m["buckets"]["history_length"].items()
                    },
                    groups=_group_means(per_user, cold),
                )
                rows.append(row)
                print(f"{dataset} k={k} {model}: {METRIC} {m['test'][METRIC]:.4f} "
                      f"cold {row['groups']['cold'][METRIC]} ({row['wall_s']} s)", flush=True)  # fmt: skip
    return rows


def _f(x: Any) -> str:
    return "–" if x is None else f"{x:.4f}"


def render_markdown(rows: Sequence[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Cold-start users: test Recall@20 per history-length bucket",
        "",
        f"Generated by `benchmarks/cold_start.py` (command: `{meta['command']}`); do not edit by hand.",
        "",
        f"- commit: `{meta['commit']}`",
        f"- machine: {meta['machine']['nproc']} cores, {meta['machine']['cpu']}; load average at start "
        f"{meta['machine']['loadavg']}, at the end {meta['loadavg_end']}; wall time {meta['wall_s']} s",
        "- split: `cold_user`, `cold_ratio: 0.2` of the eligible users are cold (only their first `k` events, by "
        "time, train); warm users are evaluated by leave-last-out. Ranking over all items, training target "
        "items masked. History = a user's TRAIN events of all behaviours (`drift.history_behavior: all`).",
        "- buckets: `metrics.json` → `buckets.history_length` (gnnrec.eval.buckets); cell = Recall@20 (users). "
        "`cold` / `warm`: mean over the cold / warm test users.",
        "- models: "
        + ", ".join(f"`{m}` {p or ''}" for m, p in MODELS.items())
        + "; seed 0, one thread, early stopping on validation NDCG@20.",
        "- refused: the model cannot score users without any training event (`split.cold_k: 0`); "
        "gnnrec stops such a run before training (gnnrec.models.cold).",
    ]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        spec = DATASETS[dataset]
        lines += [
            "",
            f"## {dataset}",
            "",
            f"Data: {spec['note']}. Training: {json.dumps(spec['train'])}.",
        ]
        for k in dict.fromkeys(r["k"] for r in rows if r["dataset"] == dataset):
            sub = [r for r in rows if r["dataset"] == dataset and r["k"] == k]
            lines += ["", f"### cold_k = {k} ({sub[0]['cold_users']} cold users)", ""]
            lines.append(
                "| model | overall | cold | warm | " + " | ".join(BUCKETS) + " | epochs | time (s) |"
            )
            lines.append("|---|" + "---:|" * (3 + len(BUCKETS) + 2))
            for r in sub:
                if "refused" in r:
                    lines.append(f"| {r['model']} | refused | | | " + " | " * len(BUCKETS) + " |")
                    continue
                cells = [
                    f"{_f(r['buckets'][b][METRIC])} ({r['buckets'][b]['users']})"
                    if b in r["buckets"]
                    else "–"
                    for b in BUCKETS
                ]
                g = r["groups"]
                lines.append(
                    f"| {r['model']} | {_f(r['test'][METRIC])} | {_f(g['cold'][METRIC])} | {_f(g['warm'][METRIC])} | "
                    + " | ".join(cells)
                    + f" | {r['epochs']} ({r['best_epoch']}) | {r['wall_s']} |"
                )
    lines += ["", "![cold-start buckets](cold_start.png)", ""]
    return "\n".join(lines)


def plot(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """One panel per (dataset, cold_k): Recall@20 per history bucket; last panel: cold users vs k."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    groups = list(dict.fromkeys((r["dataset"], r["k"]) for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    colors = {m: f"C{i}" for i, m in enumerate(models)}  # one colour per model in every panel
    n = len(groups) + 1
    ncols = min(4, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.0 * ncols, 3.3 * nrows), squeeze=False)
    flat = list(axes.flat)
    for ax, (d, k) in zip(flat, groups):
        for model in models:
            r = next((r for r in rows if r["dataset"] == d and r["k"] == k and r["model"] == model), None)
            if r is None or "refused" in r:
                continue
            ys = [r["buckets"].get(b, {}).get(METRIC) for b in BUCKETS]
            xs = [i for i, y in enumerate(ys) if y is not None]
            ax.plot(xs, [ys[i] for i in xs], marker="o", color=colors[model])
        ax.set_xticks(range(len(BUCKETS)), BUCKETS)
        ax.set_title(f"{d}, cold_k={k}", fontsize=10)
        ax.set_xlabel("training events (history)")
        ax.set_ylabel(METRIC)
    ax = flat[len(groups)]
    styles = {d: s for d, s in zip(dict.fromkeys(r["dataset"] for r in rows), ("-", "--", ":"))}
    for model in models:
        for d, style in styles.items():
            xy = sorted(
                (r["k"], r["groups"]["cold"][METRIC])
                for r in rows
                if r["model"] == model
                and r["dataset"] == d
                and "groups" in r
                and r["groups"]["cold"][METRIC] is not None
            )
            if len(xy) > 1:
                ax.plot(
                    [a for a, _ in xy], [b for _, b in xy], marker="o", color=colors[model], linestyle=style
                )
    ax.set_title(
        "cold users vs cold_k (" + ", ".join(f"{s} {d}" for d, s in styles.items()) + ")", fontsize=9
    )
    ax.set_xlabel("cold_k")
    ax.set_ylabel(f"{METRIC} (cold users)")
    for extra in flat[len(groups) + 1 :]:
        extra.axis("off")
    handles = [Line2D([], [], color=colors[m], marker="o", label=m) for m in models]
    fig.legend(handles=handles, loc="lower center", ncol=len(models), fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--datasets",
        nargs="+",
        default=["amazon-grocery", "taobao"],
        choices=list(DATASETS),
    )
    p.add_argument(
        "--ks",
        nargs="+",
        type=int,
        default=None,
        help="cold_k values (default: 0 1 3 5)",
    )
    # content_mf is left out by default: without text on these datasets its item tower sees
    # the category only (grocery: 96% of items in one category), i.e. pop_category's input
    p.add_argument(
        "--models",
        nargs="+",
        default=[m for m in MODELS if m != "content_mf"],
        choices=list(MODELS),
    )
    p.add_argument("--epochs", type=int, default=None, help="override the per-dataset epoch budget")
    p.add_argument(
        "--results",
        action="store_true",
        help="write benchmarks/results/cold_start.{md,json,png}",
    )
    p.add_argument("--render", metavar="JSON", help="only re-render the .md and .png of a results JSON")
    args = p.parse_args(argv)
    if args.render:
        src = Path(args.render)
        saved = json.loads(src.read_text())
        src.with_suffix(".md").write_text(render_markdown(saved["rows"], saved["meta"]))
        plot(saved["rows"], src.with_suffix(".png"))
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    t0 = time.perf_counter()
    meta: dict[str, Any] = {"commit": git_commit(ROOT), "machine": machine_info(),
                            "command": "python benchmarks/cold_start.py " + " ".join(sys.argv[1:] if argv is None else argv)}  # fmt: skip
    rows: list[dict[str, Any]] = []
    for dataset in args.datasets:
        ks = args.ks if args.ks is not None else [0, 1, 3, 5]
        rows += run_all([dataset], ks, args.models, args.epochs)
    meta["wall_s"] = round(time.perf_counter() - t0, 1)
    meta["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    dest = RESULTS if args.results else OUT
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "cold_start.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    (dest / "cold_start.md").write_text(render_markdown(rows, meta))
    plot(rows, dest / "cold_start.png")
    print(f"wrote {dest / 'cold_start.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
