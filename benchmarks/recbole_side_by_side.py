"""Side-by-side benchmark: gnnrec vs RecBole 1.2.1 on MovieLens-100K.

Same data (ml-100k), same split ratio (random 8:1:1 per user), same hyperparameters
(dim 64, batch 2048, lr 1e-3, 3 layers, reg 1e-4, one uniform negative per positive),
full-ranking Recall / NDCG @10/20, NDCG@20 as the validation metric, equal patience, one
validation per epoch, best model restored for the test evaluation.

Usage (from the repository root, with the project venv)::

    python benchmarks/recbole_side_by_side.py [--models mf_bpr,neumf,lightgcn,ngcf]
        [--epochs N] [--patience P] [--out DIR] [--recbole-venv PATH] [--threads T]

RecBole runs in its own throwaway venv (default ``.tmp/recbole-venv``), created on the first
run: ``torch==2.13.0`` first (the local CPU build; otherwise pip picks a CUDA build), then
``recbole==1.2.1`` with ``numpy<2``, ``pandas<3``, ``scipy<1.13``. It runs with
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (RecBole's ``load_best_model`` pickles its config).
Each side of each model runs in its own subprocess, one at a time, never in parallel, with
``OMP_NUM_THREADS`` / ``torch.set_num_threads`` set to ``--threads`` (default 1) on both.

Outputs: ``DIR/result.json`` and ``DIR/result.md`` (default ``benchmarks/out/recbole``),
one log per model and side under ``DIR/logs/``; ``--results-dir`` also writes
``recbole_ml-100k.{md,json}`` there (the committed snapshot lives in ``benchmarks/results/``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RUNNER = Path(__file__).resolve().parent / "recbole_runner.py"
METRICS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")
TORCH_PIN = "torch==2.13.0"
RECBOLE_PINS = ("recbole==1.2.1", "numpy<2", "pandas<3", "scipy<1.13")


@dataclass(frozen=True)
class ModelPair:
    """One model as each framework names and configures it."""

    gnnrec: str  # gnnrec model name (and experiments/<name>-ml-100k.yaml)
    recbole: str  # RecBole model class name
    recbole_params: dict[str, Any] = field(
        default_factory=dict
    )  # RecBole model hyperparameters
    neg_samples: int = 1  # negatives per positive (both sides)

    @property
    def experiment(self) -> Path:
        return ROOT / "experiments" / f"{self.gnnrec}-ml-100k.yaml"


# RecBole hyperparameters matching experiments/<model>-ml-100k.yaml.
MODELS: dict[str, ModelPair] = {
    # RecBole's BPR has no L2 term (gnnrec's mf_bpr adds reg 1e-4 on the batch embeddings).
    "mf_bpr": ModelPair("mf_bpr", "BPR", {"embedding_size": 64}),
    # gnnrec neumf: GMF dim 32, MLP widths (64, 32, 16) where 64 = user 32 + item 32 inputs,
    # i.e. RecBole's mlp_embedding_size 32 with hidden sizes [32, 16]; pointwise BCE, 4 negatives.
    "neumf": ModelPair(
        "neumf",
        "NeuMF",
        {
            "mf_embedding_size": 32,
            "mlp_embedding_size": 32,
            "mlp_hidden_size": [32, 16],
            "dropout_prob": 0.1,
            "mf_train": True,
            "mlp_train": True,
            "use_pretrain": False,
        },
        neg_samples=4,
    ),
    "lightgcn": ModelPair(
        "lightgcn",
        "LightGCN",
        {"embedding_size": 64, "n_layers": 3, "reg_weight": 1e-4},
    ),
    "ngcf": ModelPair(
        "ngcf",
        "NGCF",
        {
            "embedding_size": 64,
            "hidden_size_list": [64, 64, 64],
            "node_dropout": 0.0,
            "message_dropout": 0.1,
            "reg_weight": 1e-4,
        },
    ),
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; ``--models`` becomes a list of known model names."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--models",
        default="mf_bpr,neumf,lightgcn,ngcf",
        help="comma-separated gnnrec model names",
    )
    p.add_argument(
        "--epochs", type=int, default=30, help="maximum training epochs (both sides)"
    )
    p.add_argument(
        "--patience",
        type=int,
        default=30,
        help="early-stopping patience in epochs (RecBole stopping_step)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="OMP_NUM_THREADS and torch threads on both sides",
    )
    p.add_argument(
        "--eval-repeats",
        type=int,
        default=3,
        help="timed validation evaluations per side (median)",
    )
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "recbole"))
    p.add_argument(
        "--results-dir", default=None, help="also write recbole_ml-100k.{md,json} here"
    )
    p.add_argument("--recbole-venv", default=str(ROOT / ".tmp" / "recbole-venv"))
    p.add_argument(
        "--skip-install", action="store_true", help="use the RecBole venv as it is"
    )
    p.add_argument(
        "--note",
        action="append",
        default=[],
        help="a line for the report's notes (repeatable)",
    )
    p.add_argument(
        "--render",
        metavar="JSON",
        help="only re-render the Markdown of a result JSON (with --note lines added)",
    )
    p.add_argument(
        "--child-gnnrec", nargs=2, metavar=("SPEC", "RESULT"), help=argparse.SUPPRESS
    )
    args = p.parse_args(argv)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        p.error(
            f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}"
        )
    if not names and not (args.child_gnnrec or args.render):
        p.error("--models is empty")
    for flag in ("epochs", "patience", "threads", "eval_repeats"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} must be at least 1")
    args.models = names
    return args


def recbole_config(
    pair: ModelPair,
    *,
    epochs: int,
    patience: int,
    seed: int,
    data_path: str,
    checkpoint_dir: str,
) -> dict[str, Any]:
    """RecBole ``config_dict`` matching gnnrec's ml-100k experiment for ``pair``."""
    return {
        "data_path": data_path,
        "checkpoint_dir": checkpoint_dir,
        "seed": seed,
        "reproducibility": True,
        "use_gpu": False,
        "show_progress": False,
        "state": "INFO",
        # every rating is an interaction (no threshold, no k-core), as gnnrec's ml-100k
        "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
        "epochs": epochs,
        "stopping_step": patience,
        "eval_step": 1,
        "train_batch_size": 2048,
        "eval_batch_size": 4096,
        "learning_rate": 1e-3,
        "train_neg_sample_args": {
            "distribution": "uniform",
            "sample_num": pair.neg_samples,
        },
        "eval_args": {
            "split": {"RS": [0.8, 0.1, 0.1]},
            "order": "RO",
            "group_by": "user",
            "mode": "full",
        },
        "metrics": ["Recall", "NDCG"],
        "topk": [10, 20],
        "valid_metric": "NDCG@20",
        "metric_decimal_place": 6,  # RecBole rounds to 4 places by default
        **pair.recbole_params,
    }


def gnnrec_overrides(
    *, epochs: int, patience: int, seed: int, threads: int
) -> list[str]:
    """``--set`` overrides applied to ``experiments/<model>-ml-100k.yaml``."""
    return [
        f"train.epochs={epochs}",
        f"train.patience={patience}",
        "train.eval_every=1",
        "train.monitor=ndcg@20",
        f"seed={seed}",
        f"threads={threads}",
        "device=cpu",
    ]


# --------------------------------------------------------------------------- comparison


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den == 0:
        return None
    return num / den


def compare(gnnrec: dict[str, Any], recbole: dict[str, Any]) -> dict[str, Any]:
    """One table row from the two sides' result dicts.

    Speed ratios are RecBole / gnnrec (> 1: gnnrec faster); memory ratio gnnrec / RecBole
    (< 1: gnnrec smaller); metric differences relative to RecBole, (gnnrec - RecBole) / RecBole.
    """
    row: dict[str, Any] = {
        "model": gnnrec.get("model"),
        "epoch_s": {"gnnrec": gnnrec.get("epoch_s"), "recbole": recbole.get("epoch_s")},
        "epoch_speedup": _ratio(recbole.get("epoch_s"), gnnrec.get("epoch_s")),
        "eval_s": {"gnnrec": gnnrec.get("eval_s"), "recbole": recbole.get("eval_s")},
        "eval_speedup": _ratio(recbole.get("eval_s"), gnnrec.get("eval_s")),
        "epoch_cpu_s": {
            "gnnrec": gnnrec.get("epoch_cpu_s"),
            "recbole": recbole.get("epoch_cpu_s"),
        },
        "epoch_cpu_speedup": _ratio(
            recbole.get("epoch_cpu_s"), gnnrec.get("epoch_cpu_s")
        ),
        "eval_cpu_s": {
            "gnnrec": gnnrec.get("eval_cpu_s"),
            "recbole": recbole.get("eval_cpu_s"),
        },
        "eval_cpu_speedup": _ratio(recbole.get("eval_cpu_s"), gnnrec.get("eval_cpu_s")),
        "peak_rss_mb": {
            "gnnrec": gnnrec.get("peak_rss_mb"),
            "recbole": recbole.get("peak_rss_mb"),
        },
        "rss_ratio": _ratio(gnnrec.get("peak_rss_mb"), recbole.get("peak_rss_mb")),
        "epochs": {"gnnrec": gnnrec.get("epochs"), "recbole": recbole.get("epochs")},
        "best_epoch": {
            "gnnrec": gnnrec.get("best_epoch"),
            "recbole": recbole.get("best_epoch"),
        },
        "wall_s": {"gnnrec": gnnrec.get("wall_s"), "recbole": recbole.get("wall_s")},
        "test": {},
    }
    for m in METRICS:
        g, r = gnnrec.get("test", {}).get(m), recbole.get("test", {}).get(m)
        rel = None if g is None or r is None or r == 0 else (g - r) / r
        row["test"][m] = {"gnnrec": g, "recbole": r, "rel_diff": rel}
    return row


def meets_targets(
    row: dict[str, Any],
    *,
    speedup: float = 2.0,
    tolerance: float = 0.03,
    clock: str = "wall",
) -> dict[str, bool]:
    """The issue's targets: ≥ ``speedup``× per epoch and per evaluation, each test metric no
    worse than RecBole by more than ``tolerance`` (relative; better is fine).

    ``clock`` is ``"wall"`` (``epoch_speedup`` / ``eval_speedup``) or ``"cpu"`` (the process
    CPU-time ratios, which other jobs on a shared machine disturb much less)."""
    suffix = "_cpu_speedup" if clock == "cpu" else "_speedup"
    metrics_ok = all(
        v["rel_diff"] is not None and v["rel_diff"] >= -tolerance
        for v in row["test"].values()
    )
    epoch, ev = row.get("epoch" + suffix), row.get("eval" + suffix)
    return {
        "epoch": epoch is not None and epoch >= speedup,
        "eval": ev is not None and ev >= speedup,
        "metrics": metrics_ok,
    }


def _f(x: float | None, fmt: str) -> str:
    return "–" if x is None else format(x, fmt)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:+.1f}%"


def render_markdown(rows: Sequence[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The Markdown report: speed / memory table, metrics table, run facts."""
    out = [
        "# gnnrec vs RecBole 1.2.1 on MovieLens-100K",
        "",
        f"- date: {meta.get('date')}",
        f"- commit: `{meta.get('commit')}`",
        (
            f"- machine: {meta.get('nproc')} cores, {meta.get('cpu')}; load average at start {meta.get('loadavg')}, "
            f"at the end {meta.get('loadavg_end', '–')}"
        ),
        (
            f"- threads: {meta.get('threads')} per side (`OMP_NUM_THREADS` and `torch.set_num_threads`), "
            "sides and models run one after another"
        ),
        (
            f"- budget: at most {meta.get('epochs')} epochs, patience {meta.get('patience')}, "
            "validation (NDCG@20) every epoch, best model restored for test"
        ),
        f"- command: `{meta.get('command')}`",
        (
            f"- versions: gnnrec side {meta.get('versions', {}).get('gnnrec')}; "
            f"RecBole side {meta.get('versions', {}).get('recbole')}"
        ),
        "",
        (
            "Speed ratios are RecBole / gnnrec (> 1: gnnrec faster). `epoch s` is training only (mean per "
            "epoch, validation excluded); `eval s` is one full-ranking evaluation of the validation users "
            "with the restored best model, propagation included (median of "
            f"{meta.get('eval_repeats')}). Peak RSS is each child's `VmHWM`."
        ),
        "",
        (
            "| model | epoch s gnnrec | epoch s RecBole | speed-up | eval s gnnrec | eval s RecBole | speed-up "
            "| peak RSS MiB gnnrec | peak RSS MiB RecBole | epochs (best) gnnrec | epochs (best) RecBole | targets |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        t = meets_targets(r)
        marks = ", ".join(f"{k} {'✓' if ok else '✗'}" for k, ok in t.items())
        out.append(
            f"| {r['model']} | {_f(r['epoch_s']['gnnrec'], '.3f')} | {_f(r['epoch_s']['recbole'], '.3f')} "
            f"| {_f(r['epoch_speedup'], '.2f')}× | {_f(r['eval_s']['gnnrec'], '.3f')} "
            f"| {_f(r['eval_s']['recbole'], '.3f')} | {_f(r['eval_speedup'], '.2f')}× "
            f"| {_f(r['peak_rss_mb']['gnnrec'], '.0f')} | {_f(r['peak_rss_mb']['recbole'], '.0f')} "
            f"| {r['epochs']['gnnrec']} ({r['best_epoch']['gnnrec']}) "
            f"| {r['epochs']['recbole']} ({r['best_epoch']['recbole']}) | {marks} |"
        )
    out += [
        "",
        (
            "The same two measurements in process CPU seconds (one thread per side, so CPU time is the "
            "work done and moves much less than wall time when other jobs share the cores):"
        ),
        "",
        (
            "| model | epoch CPU s gnnrec | epoch CPU s RecBole | speed-up | eval CPU s gnnrec "
            "| eval CPU s RecBole | speed-up | targets (CPU) |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        t = meets_targets(r, clock="cpu")
        marks = ", ".join(f"{k} {'✓' if ok else '✗'}" for k, ok in t.items())
        out.append(
            f"| {r['model']} | {_f(r['epoch_cpu_s']['gnnrec'], '.3f')} | {_f(r['epoch_cpu_s']['recbole'], '.3f')} "
            f"| {_f(r['epoch_cpu_speedup'], '.2f')}× | {_f(r['eval_cpu_s']['gnnrec'], '.3f')} "
            f"| {_f(r['eval_cpu_s']['recbole'], '.3f')} | {_f(r['eval_cpu_speedup'], '.2f')}× | {marks} |"
        )
    out += [
        "",
        "Test metrics (full ranking; relative difference = (gnnrec − RecBole) / RecBole):",
        "",
        "| model | "
        + " | ".join(f"{m} gnnrec | {m} RecBole | Δ" for m in METRICS)
        + " |",
        "|---|" + "---:|---:|---:|" * len(METRICS),
    ]
    for r in rows:
        cells = []
        for m in METRICS:
            v = r["test"][m]
            cells += [
                _f(v["gnnrec"], ".4f"),
                _f(v["recbole"], ".4f"),
                _pct(v["rel_diff"]),
            ]
        out.append(f"| {r['model']} | " + " | ".join(cells) + " |")
    if meta.get("notes"):
        out += ["", *[f"- {n}" for n in meta["notes"]]]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- running


def _child_env(threads: int, recbole: bool = False) -> dict[str, str]:
    env = dict(os.environ)
    for var in (
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "POLARS_MAX_THREADS",
    ):
        env[var] = str(threads)
    if (
        recbole
    ):  # RecBole's load_best_model unpickles its config; gnnrec loads weights only
        env["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    env.setdefault("TMPDIR", str(ROOT / ".tmp"))
    env.setdefault("GNNREC_DATA", "/work/shared/data")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def ensure_recbole_venv(venv: Path) -> Path:
    """Create the RecBole venv unless it already imports RecBole 1.2.1; return its python."""
    python = venv / "bin" / "python"
    check = "import recbole, torch, numpy; assert recbole.__version__ == '1.2.1', recbole.__version__"
    if (
        python.exists()
        and subprocess.run(
            [str(python), "-c", check], capture_output=True, check=False
        ).returncode
        == 0
    ):
        return python
    print(
        f"creating the RecBole venv in {venv} (torch first, then recbole 1.2.1)",
        flush=True,
    )
    if not python.exists():
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    # torch first: letting pip resolve it freely would download a multi-GB CUDA build
    subprocess.run([*pip, TORCH_PIN], check=True)
    subprocess.run([*pip, *RECBOLE_PINS], check=True)
    subprocess.run([str(python), "-c", check], check=True)
    return python


def recbole_data_path(python: Path) -> str:
    """The ``dataset_example`` folder of the installed RecBole (it ships ml-100k atomic files)."""
    code = "import os, recbole; print(os.path.join(os.path.dirname(recbole.__file__), 'dataset_example'))"
    return subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def _run_child(
    cmd: list[str],
    cwd: Path,
    log_path: Path,
    threads: int,
    label: str,
    recbole: bool = False,
) -> float:
    print(f"  {label}: running (log {log_path})", flush=True)
    t = time.perf_counter()
    with log_path.open("w") as log:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            env=_child_env(threads, recbole),
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        tail = "\n".join(log_path.read_text().splitlines()[-25:])
        raise RuntimeError(
            f"{label} failed (exit {proc.returncode}); last lines of {log_path}:\n{tail}"
        )
    print(f"  {label}: done in {wall:.1f} s", flush=True)
    return wall


def run_gnnrec_side(
    pair: ModelPair, args: argparse.Namespace, out: Path
) -> dict[str, Any]:
    spec = {
        "model": pair.gnnrec,
        "config": str(pair.experiment),
        "overrides": gnnrec_overrides(
            epochs=args.epochs,
            patience=args.patience,
            seed=args.seed,
            threads=args.threads,
        ),
        "run_dir": str(out / "runs" / f"gnnrec-{pair.gnnrec}"),
        "threads": args.threads,
        "eval_repeats": args.eval_repeats,
    }
    spec_path, result_path = (
        out / "specs" / f"gnnrec-{pair.gnnrec}.json",
        out / "specs" / f"gnnrec-{pair.gnnrec}.result.json",
    )
    spec_path.write_text(json.dumps(spec, indent=2))
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child-gnnrec",
        str(spec_path),
        str(result_path),
    ]
    wall = _run_child(
        cmd,
        ROOT,
        out / "logs" / f"gnnrec-{pair.gnnrec}.log",
        args.threads,
        f"{pair.gnnrec} / gnnrec",
    )
    result = json.loads(result_path.read_text())
    result["process_wall_s"] = wall
    return result


def run_recbole_side(
    pair: ModelPair, args: argparse.Namespace, out: Path, python: Path, data_path: str
) -> dict[str, Any]:
    work = out / "recbole-work" / pair.recbole
    work.mkdir(parents=True, exist_ok=True)
    spec = {
        "model": pair.recbole,
        "threads": args.threads,
        "eval_repeats": args.eval_repeats,
        "config": recbole_config(
            pair,
            epochs=args.epochs,
            patience=args.patience,
            seed=args.seed,
            data_path=data_path,
            checkpoint_dir=str(work / "saved"),
        ),
    }
    spec_path, result_path = (
        out / "specs" / f"recbole-{pair.gnnrec}.json",
        out / "specs" / f"recbole-{pair.gnnrec}.result.json",
    )
    spec_path.write_text(json.dumps(spec, indent=2))
    cmd = [str(python), str(RUNNER), str(spec_path), str(result_path)]
    wall = _run_child(
        cmd,
        work,
        out / "logs" / f"recbole-{pair.gnnrec}.log",
        args.threads,
        f"{pair.gnnrec} / RecBole",
        recbole=True,
    )
    result = json.loads(result_path.read_text())
    result["model"] = pair.gnnrec
    result["process_wall_s"] = wall
    return result


def gnnrec_child(spec_path: str, result_path: str) -> int:
    """The gnnrec side of one model (runs in its own process with the project venv)."""
    import logging
    import statistics

    t_start = time.perf_counter()
    spec = json.loads(Path(spec_path).read_text())
    t = time.perf_counter()
    import torch

    from gnnrec.config import load_config
    from gnnrec.eval.evaluator import Evaluator
    from gnnrec.models import build_model
    from gnnrec.runner import prepare_data, run_model

    import_s = time.perf_counter() - t
    torch.set_num_threads(int(spec["threads"]))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    from gnnrec.train.trainer import Trainer

    # Process CPU seconds of training: fit minus its validations (single-threaded, so this is
    # insensitive to other jobs on a shared machine, unlike the wall-clock epoch_s).
    cpu = {"fit": 0.0, "validate": 0.0}
    fit, validate = Trainer.fit, Trainer._validate

    def cpu_fit(self: Any, *a: Any, **k: Any) -> Any:
        c0 = time.process_time()
        try:
            return fit(self, *a, **k)
        finally:
            cpu["fit"] += time.process_time() - c0

    def cpu_validate(self: Any, *a: Any, **k: Any) -> Any:
        c0 = time.process_time()
        try:
            return validate(self, *a, **k)
        finally:
            cpu["validate"] += time.process_time() - c0

    Trainer.fit, Trainer._validate = cpu_fit, cpu_validate  # type: ignore[method-assign]

    cfg = load_config(spec["config"], spec["overrides"])
    t = time.perf_counter()
    prepared = prepare_data(cfg)
    data_s = time.perf_counter() - t
    run_dir = Path(spec["run_dir"])
    res = run_model(cfg, prepared, run_dir, progress=False).metrics

    # Time one full-ranking evaluation of the validation users with the restored best model:
    # encode (propagation) + score all items + top-k + metrics, as RecBole's evaluate(valid).
    model = build_model(cfg.model, prepared.data.meta)
    model.load_state_dict(
        torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True)
    )
    model.prepare(prepared.data)
    model.eval()
    evaluator = Evaluator(
        cfg.eval.ks, cfg.eval.metrics, cfg.eval.batch_size, torch.device("cpu")
    )
    eval_times: list[float] = []
    eval_cpu: list[float] = []
    with torch.no_grad():
        for _ in range(int(spec["eval_repeats"])):
            t0, c0 = time.perf_counter(), time.process_time()
            emb = model.encode(prepared.data)
            valid = evaluator.evaluate(model, emb, prepared.valid)
            eval_times.append(time.perf_counter() - t0)
            eval_cpu.append(time.process_time() - c0)

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from recbole_runner import peak_rss_mb

    from gnnrec.utils.runinfo import environment_info

    result = {
        "side": "gnnrec",
        "model": spec["model"],
        "epochs": res["epochs"],
        "best_epoch": res["best_epoch"],
        "epoch_s": res["timing"]["epoch_s"],
        "epoch_cpu_s": (cpu["fit"] - cpu["validate"]) / max(1, res["epochs"]),
        "eval_s": statistics.median(eval_times),
        "eval_times": eval_times,
        "eval_cpu_s": statistics.median(eval_cpu),
        "test_eval_s": res["timing"][
            "eval_s"
        ],  # encode + test evaluation, from metrics.json
        "fit_s": res["timing"]["fit_s"],
        "data_s": data_s,
        "import_s": import_s,
        "wall_s": time.perf_counter() - t_start,
        "peak_rss_mb": peak_rss_mb(),
        "threads": torch.get_num_threads(),
        "test": {k.lower(): float(v) for k, v in res["test"].items()},
        "valid": {k.lower(): float(v) for k, v in valid.metrics.items()},
        "data": res["data"],
        "run_dir": str(run_dir),
        "versions": environment_info(),
    }
    Path(result_path).write_text(json.dumps(result, indent=2))
    return 0


METHOD_NOTE = (
    "Method and the differences that remain between the two sides (splits are different random "
    "draws; initialisation / regularisation defaults of LightGCN, MF and NeuMF's batching): "
    "benchmarks/README.md, section 'Side by side with RecBole'."
)


def render_file(json_path: Path, notes: Sequence[str]) -> str:
    """Re-render the Markdown of a saved result JSON, appending ``notes``; writes the ``.md``
    beside it and returns it."""
    payload = json.loads(json_path.read_text())
    meta = payload["meta"]
    kept = [n for n in meta.get("notes", []) if n not in notes and n != METHOD_NOTE]
    meta["notes"] = [*kept, *notes, METHOD_NOTE]
    json_path.write_text(json.dumps(payload, indent=2))
    md = render_markdown(payload["rows"], meta)
    json_path.with_suffix(".md").write_text(md)
    return md


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "loadavg": None if load is None else [round(x, 2) for x in load],
    }


def _commit() -> str | None:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        return (
            sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
            if sha.returncode == 0
            else None
        )
    except OSError:
        return None


def write_outputs(
    rows: list[dict[str, Any]],
    sides: dict[str, Any],
    meta: dict[str, Any],
    dirs: Sequence[Path],
) -> None:
    payload = {"meta": meta, "rows": rows, "sides": sides}
    md = render_markdown(rows, meta)
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
        name = "result" if d.name != "results" else "recbole_ml-100k"
        (d / f"{name}.json").write_text(json.dumps(payload, indent=2))
        (d / f"{name}.md").write_text(md)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child_gnnrec:
        return gnnrec_child(*args.child_gnnrec)
    if args.render:
        print(render_file(Path(args.render), args.note))
        return 0
    out = Path(args.out).resolve()
    for sub in ("logs", "specs", "runs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    python = Path(args.recbole_venv).resolve() / "bin" / "python"
    if not args.skip_install:
        python = ensure_recbole_venv(Path(args.recbole_venv).resolve())
    data_path = recbole_data_path(python)
    meta: dict[str, Any] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),  # noqa: UP017 - datetime.UTC needs Python 3.11
        "commit": _commit(),
        **machine_info(),
        "threads": args.threads,
        "epochs": args.epochs,
        "patience": args.patience,
        "seed": args.seed,
        "eval_repeats": args.eval_repeats,
        "command": "python benchmarks/recbole_side_by_side.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "recbole_data": data_path,
        "versions": {},
        "notes": [*args.note, METHOD_NOTE],
    }
    dirs = [out] + ([Path(args.results_dir)] if args.results_dir else [])
    rows: list[dict[str, Any]] = []
    sides: dict[str, Any] = {}
    for name in args.models:
        pair = MODELS[name]
        print(f"[{name}] gnnrec {name} vs RecBole {pair.recbole}", flush=True)
        g = run_gnnrec_side(pair, args, out)
        r = run_recbole_side(pair, args, out, python, data_path)
        v = g.get("versions", {})
        meta["versions"]["gnnrec"] = f"torch {v.get('torch')}, numpy {v.get('numpy')}"
        meta["versions"]["recbole"] = ", ".join(
            f"{k} {x}" for k, x in r.get("versions", {}).items()
        )
        sides[name] = {"gnnrec": g, "recbole": r}
        row = compare(g, r)
        rows.append(row)
        print(
            f"[{name}] epoch s {g['epoch_s']:.3f} vs {r['epoch_s']:.3f} ({row['epoch_speedup']:.2f}x), "
            f"eval s {g['eval_s']:.3f} vs {r['eval_s']:.3f} ({row['eval_speedup']:.2f}x), "
            f"test ndcg@20 {g['test'].get('ndcg@20', float('nan')):.4f} vs {r['test'].get('ndcg@20', float('nan')):.4f}",
            flush=True,
        )
        meta["loadavg_end"] = machine_info()["loadavg"]
        write_outputs(
            rows, sides, meta, dirs
        )  # after each model, so an interrupted run keeps results
    print(render_markdown(rows, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
