"""The ``gnnrec`` command line.

Errors caused by bad input or configuration print one ``error: ...`` line and exit with
status 2 (``--debug`` shows the traceback instead).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gnnrec.errors import ConfigError, GnnrecError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one ``error:`` line with exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(EXIT_USAGE)


def _quiet_warnings() -> None:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")
    warnings.filterwarnings("ignore", message=".*An issue occurred while importing.*")


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    root = logging.getLogger("gnnrec")
    root.setLevel(logging.INFO)
    if not any(isinstance(h, RichHandler) for h in root.handlers):
        handler = RichHandler(show_path=False, show_time=False, markup=False)
        handler.setLevel(logging.INFO if verbose else logging.WARNING)
        root.addHandler(handler)


# ---------------------------------------------------------------- run
def _console() -> Any:
    """A rich console; when output is not a terminal, wide enough that tables don't wrap."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=160)


def cmd_run(args: argparse.Namespace) -> int:

    from gnnrec.config import load_config
    from gnnrec.reports.tables import comparison_rows, comparison_table, metrics_table, to_markdown
    from gnnrec.runner import make_run_dir, prepare_data, run_model, with_model

    overrides = list(args.set or [])
    if args.device:
        overrides.append(f"device={args.device}")
    cfg = load_config(args.config, overrides)
    console = _console()
    progress = not args.quiet
    if not cfg.compare:
        from gnnrec.runner import run

        out = Path(args.out) if args.out else None
        result = run(cfg, out, progress=progress)
        console.print(metrics_table(result.metrics, title=f"{cfg.model.name} on {cfg.data.dataset} (test)"))
        console.print(f"run directory: {result.run_dir}")
        return 0

    run_dir = Path(args.out) if args.out else make_run_dir(cfg.out_dir, cfg.name)
    run_dir.mkdir(parents=True, exist_ok=True)
    prepared = prepare_data(cfg)
    results: dict[str, dict[str, Any]] = {}
    for i, spec in enumerate(cfg.compare, 1):
        label = spec.name if sum(s.name == spec.name for s in cfg.compare) == 1 else f"{spec.name}-{i}"
        console.print(f"[{i}/{len(cfg.compare)}] {label}")
        res = run_model(with_model(cfg, spec), prepared, run_dir / label, progress=progress)
        results[label] = res.metrics
    keys = [f"{m}@{k}" for k in cfg.eval.ks for m in ("recall", "ndcg") if m in cfg.eval.metrics]
    rows = comparison_rows(results, keys)
    (run_dir / "comparison.md").write_text(to_markdown(rows))
    (run_dir / "comparison.json").write_text(json.dumps(results, indent=2))
    import polars as pl

    pl.DataFrame(rows).write_csv(run_dir / "comparison.csv")
    console.print(comparison_table(rows, title=f"{cfg.name}: {cfg.data.dataset}, split {cfg.split.mode} (test)"))
    console.print(f"run directory: {run_dir}")
    return 0


# ---------------------------------------------------------------- data validate
def _parse_pairs(items: Sequence[str] | None, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for text in items or []:
        key, sep, value = text.partition("=")
        if not sep or not key or not value:
            raise ConfigError(f"{flag} expects name=value, got '{text}'")
        out[key.strip()] = value.strip()
    return out


def cmd_data_validate(args: argparse.Namespace) -> int:
    from gnnrec.config import DataConfig, validate_section
    from gnnrec.data.ingest import read_log
    from gnnrec.data.interactions import build_interactions
    from gnnrec.data.schema import validate_log
    from gnnrec.data.summary import format_summary, summarize

    columns: dict[str, str | int] = {
        k: (int(v) if v.isdigit() else v) for k, v in _parse_pairs(args.map, "--map").items()
    }
    cfg_dict: dict[str, Any] = {
        "dataset": "file",
        "path": args.path,
        "format": args.format,
        "columns": columns,
        "behavior_map": _parse_pairs(args.behavior_map, "--behavior-map"),
        "on_error": args.on_error,
    }
    if args.delimiter is not None:
        cfg_dict["delimiter"] = args.delimiter
    if args.header is not None:
        cfg_dict["has_header"] = args.header
    cfg = validate_section(DataConfig, cfg_dict, "data")
    raw = read_log(
        args.path, format=cfg.format, has_header=cfg.has_header, delimiter=cfg.delimiter, columns=cfg.columns
    )
    table = build_interactions(validate_log(raw, cfg), cfg)
    print(format_summary(summarize(table)))
    return 0


# ---------------------------------------------------------------- registries
def cmd_datasets(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from gnnrec.data.datasets import DATASETS

    table = Table(title="datasets (data.dataset)")
    for col in ("name", "folder", "description"):
        table.add_column(col)
    for name in DATASETS.names():
        meta = DATASETS.meta(name)
        table.add_row(name, str(meta.get("folder") or "-"), str(meta.get("description", "")))
    _console().print(table)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from gnnrec.models import MODELS

    table = Table(title="models (model.name)")
    for col in ("name", "trainable", "description"):
        table.add_column(col)
    for name in MODELS.names():
        cls = MODELS.get(name)
        table.add_row(name, "yes" if cls.trainable else "no", MODELS.meta(name).get("description", ""))
    _console().print(table)
    return 0


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="gnnrec", description="Graph-neural-network recommendation on behaviour logs.")
    p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details (INFO)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    r = sub.add_parser(
        "run",
        help="train and evaluate the model(s) of an experiment config",
        description="Run CONFIG.yaml: load and validate data, split, build the training graph, "
        "train with early stopping, evaluate with full ranking and write a run directory "
        "(config.yaml, metrics.json, per-user metrics, TensorBoard events, log). A config with a "
        "`compare:` list runs every listed model on the same split and prints a comparison table. "
        "Checkpoints: `--set train.checkpoint_every=N` writes RUN_DIR/checkpoint.pt every N epochs; "
        "`--out RUN_DIR --set train.resume=true` continues an interrupted run from it "
        "(`train.time_budget_min` stops training after that many minutes).",
    )
    r.add_argument("config", help="experiment YAML (see experiments/)")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value, e.g. train.lr=1e-3")
    r.add_argument("--out", help="run directory (default: <out_dir>/<name>-<timestamp>)")
    r.add_argument("--device", choices=["auto", "cpu", "cuda"], help="override the config's device")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    r.set_defaults(func=cmd_run)

    d = sub.add_parser("data", help="inspect behaviour logs")
    dsub = d.add_subparsers(dest="data_command", metavar="SUBCOMMAND", parser_class=_Parser)
    v = dsub.add_parser(
        "validate",
        help="validate a log file and print a summary",
        description="Validate a behaviour log (CSV/TSV, optionally .gz, or Parquet) and print rows, users, "
        "items, categories, behaviours and time range — or the first error (file, row, column, value).",
    )
    v.add_argument("path", help="log file")
    v.add_argument("--map", action="append", metavar="CANON=COLUMN", help="column map, e.g. user=uid (or a 0-based index)")
    v.add_argument("--format", choices=["auto", "csv", "tsv", "parquet"], default="auto")
    v.add_argument("--delimiter", help="CSV delimiter (default: detect)")
    hdr = v.add_mutually_exclusive_group()
    hdr.add_argument("--header", dest="header", action="store_true", default=None, help="the file has a header row")
    hdr.add_argument("--no-header", dest="header", action="store_false", help="the file has no header row")
    v.add_argument("--behavior-map", action="append", metavar="RAW=NAME", help="behaviour value map, e.g. pv=view")
    v.add_argument("--on-error", choices=["fail", "drop"], default="fail", help="stop at the first bad row, or drop and count")
    v.set_defaults(func=cmd_data_validate)

    ds = sub.add_parser("datasets", help="list registered datasets")
    ds.set_defaults(func=cmd_datasets)
    ms = sub.add_parser("models", help="list registered models")
    ms.set_defaults(func=cmd_models)
    _register_commands(sub)
    return p


def _register_commands(sub: Any) -> None:
    """Add the sub-commands defined in :mod:`gnnrec.commands` (one module each, sorted)."""
    import importlib
    import pkgutil

    import gnnrec.commands

    for info in sorted(pkgutil.iter_modules(gnnrec.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"gnnrec.commands.{info.name}")
        module.register(sub)


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_warnings()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    _setup_logging(args.verbose)
    try:
        return int(args.func(args))
    except GnnrecError as err:
        if args.debug:
            raise
        sys.stderr.write(f"error: {err}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
