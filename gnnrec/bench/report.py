"""Suite reports: Markdown / CSV / LaTeX tables, plots, and committed snapshots.

:func:`write_report` reads the cells of an output directory and writes there:

``table.md``, ``table.csv``, ``table.tex``
    one row per (dataset, model): each suite metric as mean ± std over seeds, fit seconds,
    seconds per epoch, epochs, peak memory and, where the suite names references,
    the published value and the ratio ours / published;
``cells.csv``
    every cell raw (all test metrics, timings, memory, status);
``metrics_<dataset>.png``
    bars of each suite metric per model, error bars ± one std over seeds;
``curves_<dataset>.png``
    training curves from each cell's TensorBoard events (``train/loss`` and the
    validation ``train.monitor`` metric per epoch, mean over seeds);
``time_vs_<metric>_<dataset>.png``
    fit seconds against the key (first) metric per model.

:func:`write_snapshot` copies the tables and figures into a folder meant to be committed
(``benchmarks/results/<suite>``) with a README stating commit, machine, load average and
the command.
"""

from __future__ import annotations

import csv
import io
import json
import math
import platform
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gnnrec.bench.aggregate import aggregate, cell_records
from gnnrec.bench.suite import Suite

PEAK_NOTE = (
    "peak MB: the largest, over seeds, peak resident set size of the process that ran the cell "
    "(the benchmark process, or its worker with --jobs) while the cell ran (Linux: the kernel's "
    "VmHWM, reset at the start of each cell through "
    "/proc/self/clear_refs, so cells are measured one by one although they share a process; "
    "elsewhere the RSS sampled every 50 ms). It includes the interpreter, the imports and the "
    "prepared data the cell shares with the other models of its data group; cells.csv also "
    "has delta_rss_mb, the memory the cell added on top of what the process held when it started."
)


# ---------------------------------------------------------------- formatting
def _num(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{digits}f}"


def _secs(v: Any) -> str:
    if v is None:
        return "–"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def _pm(mean: Any, std: Any, digits: int = 4) -> str:
    if mean is None:
        return "–"
    return _num(mean, digits) if std is None else f"{_num(mean, digits)} ± {_num(std, digits)}"


def has_references(rows: Sequence[Mapping[str, Any]]) -> bool:
    return any("reference" in r for r in rows)


def table_columns(suite: Suite, rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, Any]]:
    """(header, cell-formatter) pairs of the human-readable table (Markdown, rich, LaTeX)."""
    cols: list[tuple[str, Any]] = []
    if len(suite.datasets) > 1:
        cols.append(("dataset", lambda r: r["dataset"]))
    cols.append(("model", lambda r: r["model"]))
    cols.append(("seeds", lambda r: str(r["seeds"]) + (f" ({r['missing']} not finished)" if r["missing"] else "")))
    refs = has_references(rows)
    for k in suite.metrics:
        cols.append((k, lambda r, k=k: _pm(r[f"{k}_mean"], r[f"{k}_std"])))
        if refs:
            cols.append((f"{k} published", lambda r, k=k: _num(r.get(f"{k}_published"))))
            cols.append((f"{k} ratio", lambda r, k=k: _num(r.get(f"{k}_ratio"), 3)))
    cols += [
        ("fit s", lambda r: _secs(r["fit_s_mean"])),
        ("s/epoch", lambda r: _secs(r["epoch_s_mean"]) if r["epochs_mean"] else "–"),
        ("epochs", lambda r: "–" if r["epochs_mean"] is None else f"{r['epochs_mean']:.3g}"),
        ("peak MB", lambda r: "–" if r["peak_rss_mb_max"] is None else f"{r['peak_rss_mb_max']:.0f}"),
    ]
    if refs:
        cols.append(("published as", lambda r: _ref_label(r)))
    return cols


def _ref_label(r: Mapping[str, Any]) -> str:
    if not r.get("reference"):
        return "–"
    return f"{r['reference']} ({r['reference_source']})"


def markdown_table(suite: Suite, rows: Sequence[Mapping[str, Any]]) -> str:
    """The aggregated table as Markdown (no header/footer)."""
    cols = table_columns(suite, rows)
    lines = ["| " + " | ".join(h for h, _ in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(f(r) for _, f in cols) + " |")
    return "\n".join(lines) + "\n"


def rich_table(suite: Suite, rows: Sequence[Mapping[str, Any]], title: str | None = None) -> Any:
    """The aggregated table for the terminal; the best mean of each metric in bold."""
    from rich.table import Table

    cols = table_columns(suite, rows)
    table = Table(title=title or f"{suite.name}: test metrics, mean ± std over seeds")
    for h, _ in cols:
        table.add_column(h, justify="left" if h in ("dataset", "model", "published as") else "right")
    best: dict[tuple[str, str], float] = {}
    for r in rows:
        for k in suite.metrics:
            v = r[f"{k}_mean"]
            if v is not None and v > best.get((r["dataset"], k), -math.inf):
                best[(r["dataset"], k)] = v
    for r in rows:
        cells = []
        for h, f in cols:
            text = f(r)
            if h in suite.metrics and r[f"{h}_mean"] is not None and r[f"{h}_mean"] == best.get((r["dataset"], h)):
                text = f"[bold]{text}[/bold]"
            cells.append(text)
        table.add_row(*cells)
    return table


def _tex_escape(text: str) -> str:
    return re.sub(r"([_%&#$])", r"\\\1", text).replace("±", r"$\pm$").replace("–", "--")


def latex_table(suite: Suite, rows: Sequence[Mapping[str, Any]]) -> str:
    """The aggregated table as a LaTeX ``tabular`` (booktabs rules)."""
    cols = table_columns(suite, rows)
    spec = "".join("l" if h in ("dataset", "model", "published as") else "r" for h, _ in cols)
    out = [
        f"% Generated by `gnnrec bench` (suite {suite.name}); do not edit by hand.",
        "% Needs \\usepackage{booktabs}.",
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        " & ".join(_tex_escape(h) for h, _ in cols) + r" \\",
        "\\midrule",
    ]
    for r in rows:
        out.append(" & ".join(_tex_escape(f(r)) for _, f in cols) + r" \\")
    out += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(out)


def _csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in keys})
    return buf.getvalue()


# ---------------------------------------------------------------- header / notes
def machine_info() -> dict[str, Any]:
    """CPU model, core count, platform and library versions of this machine."""
    import os

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {"cpu": cpu, "cpus": os.cpu_count(), "platform": platform.platform(),
                            "python": platform.python_version()}
    import sys

    torch = sys.modules.get("torch")  # not imported just for this (a --jobs parent has no torch)
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    else:
        from importlib.metadata import PackageNotFoundError, version

        try:
            info["torch"] = version("torch")
        except PackageNotFoundError:  # pragma: no cover - a dependency
            info["torch"] = None
    return info


def _run_lines(run_info: Mapping[str, Any] | None) -> list[str]:
    if not run_info:
        return []
    m = run_info.get("machine", {})
    machine = f"{m.get('cpu', '?')}, {m.get('cpus', '?')} CPUs, {m.get('platform', '?')}"
    if m.get("cuda"):
        machine += f", GPU {m['cuda']}"
    lines = [
        f"- command: `{run_info.get('command', '?')}`",
        f"- commit: `{run_info.get('commit')}`",
        f"- machine: {machine}; Python {m.get('python', '?')}, torch {m.get('torch', '?')}",
        (f"- started {run_info.get('started_utc', '?')} UTC; cells {run_info.get('wall_s', 0):.1f} s wall"
        + (f", {run_info['process_s']:.1f} s since the process started (imports included) until the report"
           if run_info.get("process_s") is not None else "")
        + f"; load average (1/5/15 min) before {run_info.get('load_avg_before')}, "
        f"after {run_info.get('load_avg_after')}"),
        (f"- cells: {run_info.get('ran', 0)} run by this command, {run_info.get('skipped', 0)} finished "
        f"before (--resume), {run_info.get('failed', 0)} failed"),
    ]
    rendered = run_info.get("rendered_by")
    if rendered:
        lines.append(f"- report re-rendered {rendered.get('utc')} UTC by `{rendered.get('command')}` (no cell re-run)")
    return lines


def notes(suite: Suite, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Footnotes explaining the columns and citing the references."""
    out = [
        (
            "- Metrics: test set, full ranking; mean ± sample standard deviation (n − 1) over the seeds "
            f"{list(suite.config.seeds)} (each seed draws its own split and initialisation)."
        ),
        (
            "- fit s: wall seconds of `Trainer.fit` (model preparation, training and per-epoch validation); "
            "s/epoch: training seconds per epoch, validation excluded; epochs: epochs run (early stopping); "
            "all means over seeds. Non-trainable models have no epochs."
        ),
        f"- {PEAK_NOTE}",
    ]
    if has_references(rows):
        out.append("- published / ratio: the published number and ours (mean) / published.")
        for ds, refs in suite.references.items():
            used = {r.get(f"{k}_source") for r in rows if r["dataset"] == ds for k in suite.metrics}
            path = suite.reference_paths.get(ds)
            for key, src in (refs.get("sources") or {}).items():
                if key in used:
                    cite = " ".join(str(src.get("cite", "")).split())
                    out.append(f"- [{key}] ({ds}, `{path.name if path else ''}`): {cite}")
    return out


def render_markdown(suite: Suite, rows: Sequence[Mapping[str, Any]], run_info: Mapping[str, Any] | None) -> str:
    """The whole ``table.md``: title, run facts, the table and its notes."""
    lines = [f"# Benchmark suite `{suite.name}`", ""]
    if suite.config.description:
        lines += [" ".join(suite.config.description.split()), ""]
    lines += ["Generated by `gnnrec bench` (do not edit by hand).", ""]
    run_lines = _run_lines(run_info)
    if run_lines:
        lines += [*run_lines, ""]
    lines.append(markdown_table(suite, rows))
    lines += [*notes(suite, rows), ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- plots
def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_metric_bars(suite: Suite, rows: Sequence[Mapping[str, Any]], dataset: str, path: Path) -> Path:
    """Bars of each suite metric per model (mean), error bars ± one std over seeds."""
    import numpy as np

    plt = _plt()
    rs = [r for r in rows if r["dataset"] == dataset]
    metrics = suite.metrics
    x = np.arange(len(rs))
    width = 0.8 / len(metrics)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.0 + 0.9 * len(rs)), 3.6), dpi=100)
    for j, k in enumerate(metrics):
        means = [r[f"{k}_mean"] if r[f"{k}_mean"] is not None else np.nan for r in rs]
        stds = [r[f"{k}_std"] or 0.0 for r in rs]
        ax.bar(x + (j - (len(metrics) - 1) / 2) * width, means, width, yerr=stds, capsize=3, label=k)
    ax.set_xticks(x)
    ax.set_xticklabels([r["model"] for r in rs], rotation=20, ha="right")
    ax.set_ylabel("test metric (mean ± std)")
    ax.set_title(f"{suite.name} — {dataset} (n = {max((r['seeds'] for r in rs), default=0)} seeds)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def read_curves(tb_dir: Path, tags: Sequence[str]) -> dict[str, list[tuple[int, float]]]:
    """Scalar series ``tag -> [(step, value)]`` from a run's TensorBoard event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not tb_dir.is_dir():
        return {}
    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    acc.Reload()
    have = set(acc.Tags().get("scalars", []))
    out: dict[str, list[tuple[int, float]]] = {}
    for tag in tags:
        if tag in have:
            # One value per step (the last one written), in step order.
            series = {int(e.step): float(e.value) for e in acc.Scalars(tag)}
            out[tag] = sorted(series.items())
    return out


def plot_curves(suite: Suite, out: Path, dataset: str, path: Path) -> Path | None:
    """Training loss and validation monitor metric per epoch (mean over seeds) per model."""
    plt = _plt()
    cells = [c for c in suite.cells if c.dataset == dataset]
    if not cells:
        return None
    monitor = cells[0].config.train.monitor
    tags = ("train/loss", f"valid/{monitor}")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), dpi=100)
    drawn = False
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, model in enumerate(suite.models):
        color = colors[i % len(colors)]
        per_tag: dict[str, dict[int, list[float]]] = {t: {} for t in tags}
        for c in cells:
            if c.model != model or not (c.run_dir(out) / "metrics.json").exists():
                continue
            for tag, series in read_curves(c.run_dir(out) / "tb", tags).items():
                for step, value in series:
                    per_tag[tag].setdefault(step, []).append(value)
        for ax, tag in zip(axes, tags):
            pts = sorted(per_tag[tag].items())
            if not pts:
                continue
            xs = [s for s, _ in pts]
            ys = [sum(v) / len(v) for _, v in pts]
            if xs == [0]:  # non-trainable (validated once): a level to compare the curves with
                ax.axhline(ys[0], color=color, linestyle="--", linewidth=1, label=f"{model} (not trained)")
            else:
                ax.plot(xs, ys, color=color, marker="o" if len(xs) < 3 else None, markersize=4, label=model)
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    axes[0].set_title("training loss")
    axes[1].set_title(f"validation {monitor}")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.suptitle(f"{suite.name} — {dataset}: training curves (mean over seeds; epoch 0 = untrained / non-trainable)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_time_vs_accuracy(suite: Suite, rows: Sequence[Mapping[str, Any]], dataset: str, path: Path) -> Path | None:
    """Fit seconds (log scale) against the key metric, one point per model with error bars."""
    plt = _plt()
    key = suite.metrics[0]
    rs = [r for r in rows if r["dataset"] == dataset and r[f"{key}_mean"] is not None]
    if not rs:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=100)
    for r in rs:
        x = max(r["fit_s_mean"] or 0.0, 1e-3)
        ax.errorbar(x, r[f"{key}_mean"], yerr=r[f"{key}_std"] or 0.0, fmt="o", capsize=3)
        ax.annotate(r["model"], (x, r[f"{key}_mean"]), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("fit seconds (mean over seeds, log scale)")
    ax.set_ylabel(f"test {key}")
    ax.set_title(f"{suite.name} — {dataset}: time vs accuracy", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", text)


# ---------------------------------------------------------------- all together
def write_report(
    suite: Suite, out: str | Path, run_info: Mapping[str, Any] | None = None, *, plots: bool = True
) -> dict[str, Any]:
    """Write the tables and plots of ``suite``'s cells in ``out`` (see the module docs).

    Args:
        suite: the loaded suite.
        out: the suite's output directory.
        run_info: facts about the invocation for the header (command, commit, machine,
            load average, wall); None = none.
        plots: also draw the figures.

    Returns:
        ``{"rows": aggregated rows, "cells": cell records, "files": written paths}``.
    """
    out = Path(out)
    records = cell_records(suite, out)
    rows = aggregate(suite, records)
    files: list[Path] = []

    def write(name: str, text: str) -> None:
        (out / name).write_text(text)
        files.append(out / name)

    write("table.md", render_markdown(suite, rows, run_info))
    write("table.csv", _csv_text(rows))
    write("table.tex", latex_table(suite, rows))
    write("cells.csv", _csv_text(records))
    if plots:
        for ds in suite.datasets:
            s = _slug(ds)
            drawn = [
                plot_metric_bars(suite, rows, ds, out / f"metrics_{s}.png"),
                plot_curves(suite, out, ds, out / f"curves_{s}.png"),
                plot_time_vs_accuracy(suite, rows, ds, out / f"time_vs_{_slug(suite.metrics[0])}_{s}.png"),
            ]
            files += [p for p in drawn if p is not None]
    return {"rows": rows, "cells": records, "files": files}


def _table_body(table_md: str) -> str:
    """table.md from the table on (its title and run facts are in the snapshot README already)."""
    lines = table_md.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), 0)
    return "\n".join(lines[start:]).strip()


def write_snapshot(out: str | Path, dest: str | Path, run_info: Mapping[str, Any]) -> list[Path]:
    """Copy ``out``'s tables and figures into ``dest`` (a folder to commit) with a README
    naming the command, commit, machine and load average; returns the written files."""
    out, dest = Path(out), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    # A snapshot is replaced as a whole, but only the files an earlier snapshot wrote are
    # removed (``dest`` may be a folder holding other results).
    previous = dest / "run.json"
    if previous.is_file():
        try:
            names = json.loads(previous.read_text()).get("snapshot_files", [])
        except ValueError:
            names = []
        for name in names:
            if "/" not in name and (dest / name).is_file():
                (dest / name).unlink()
    written: list[Path] = []
    for name in ("table.md", "table.csv", "table.tex"):
        if (out / name).exists():
            shutil.copy2(out / name, dest / name)
            written.append(dest / name)
    pngs = sorted(out.glob("*.png"))
    for p in pngs:
        shutil.copy2(p, dest / p.name)
        written.append(dest / p.name)
    table = (out / "table.md").read_text() if (out / "table.md").exists() else ""
    # The suite's description: table.md's paragraph between the title and "Generated by".
    head = table.split("Generated by", 1)[0].splitlines()[1:] if "Generated by" in table else []
    description = " ".join(line.strip() for line in head if line.strip())
    readme = [
        f"# Snapshot of `gnnrec bench` suite `{run_info.get('suite', '?')}`",
        "",
        *([description, ""] if description else []),
        "Generated by `gnnrec bench ... --snapshot` from a real run (do not edit by hand; rerun the",
        "command below to refresh it).",
        "",
        *_run_lines(run_info),
        "",
        "Files: " + ", ".join(f"[`{p.name}`]({p.name})" for p in written),
        "",
        *(f"![{p.stem}]({p.name})" for p in pngs),
        "",
        "## Table",
        "",
        _table_body(table),
        "",
    ]
    (dest / "README.md").write_text("\n".join(readme))
    info = {**run_info, "snapshot_files": ["README.md", "run.json", *(p.name for p in written)]}
    (dest / "run.json").write_text(json.dumps(info, indent=2) + "\n")
    return [dest / "README.md", dest / "run.json", *written]
