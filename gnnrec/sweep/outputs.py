"""What a sweep leaves in its directory, rebuilt from the study's storage after each run.

    trials.csv                    one row per trial (see TRIAL_COLUMNS, then params.<path>,
                                  valid.<metric>, test.<metric> per evaluated metric)
    best_config.yaml              the best trial's config: `gnnrec run best_config.yaml`
    optimization_history.png      Optuna plots (matplotlib)
    param_importances.png         (needs two complete trials with varying parameters)
    intermediate_values.png       per-epoch validation metric of every trial (pruning)
    report.html                   the plots and the trials table in one page
    tb/trial-NNNN/                TensorBoard HPARAMS: one entry per finished trial

Everything comes from the storage, not from the run directories, so the outputs written
on any machine of a shared PostgreSQL study list every trial.
"""

from __future__ import annotations

import base64
import csv
import html
import math
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Leading columns of trials.csv.
TRIAL_COLUMNS = (
    "number",
    "state",
    "value",
    "duration_s",
    "epochs",
    "best_epoch",
    "pruned_epoch",
    "retry_of",
    "worker_host",
    "worker_pid",
    "run_dir",
    "error",
)

PLOTS = ("optimization_history", "param_importances", "intermediate_values")


@dataclass
class SweepOutputs:
    """Paths written and the best trial (``None`` when no trial completed)."""

    sweep_dir: Path
    trials_csv: Path
    best_config: Path | None
    best_number: int | None
    best_value: float | None
    plots: dict[str, Path] = field(default_factory=dict)
    plot_notes: dict[str, str] = field(default_factory=dict)
    report_html: Path | None = None
    tb_dir: Path | None = None


def _num(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return ""
    return "" if v is None else v


def _pruned_epoch(t: Any) -> Any:
    if t.state.name != "PRUNED" or not t.intermediate_values:
        return ""
    return max(t.intermediate_values)


def _param_names(trials: list[Any], order: list[str]) -> list[str]:
    from gnnrec.sweep.space import ordered_names

    return ordered_names({k for t in trials for k in t.params}, order)


def trial_rows(
    study: Any, metric_names: list[str], order: Sequence[str] = ()
) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and rows of trials.csv (all trials, by number); parameters in ``order``."""
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    param_names = _param_names(trials, list(order))
    columns = [*TRIAL_COLUMNS, *(f"params.{p}" for p in param_names)]
    columns += [f"valid.{m}" for m in metric_names] + [f"test.{m}" for m in metric_names]
    rows = []
    for t in trials:
        ua = t.user_attrs
        error = ua.get("error", "")
        if t.state.name == "FAIL" and not error:
            error = "interrupted (worker stopped or died)"
        row: dict[str, Any] = {
            "number": t.number,
            "state": t.state.name,
            "value": _num(t.value),
            "duration_s": round(t.duration.total_seconds(), 3) if t.duration is not None else "",
            "epochs": _num(ua.get("epochs")),
            "best_epoch": _num(ua.get("best_epoch")),
            "pruned_epoch": _pruned_epoch(t),
            "retry_of": _num(ua.get("retry_of")),
            "worker_host": ua.get("worker_host", ""),
            "worker_pid": _num(ua.get("worker_pid")),
            "run_dir": ua.get("run_dir", ""),
            "error": error,
        }
        for p in param_names:
            row[f"params.{p}"] = _num(t.params.get(p))
        for part in ("valid", "test"):
            vals = ua.get(part) or {}
            for m in metric_names:
                row[f"{part}.{m}"] = _num(vals.get(m))
        rows.append(row)
    return columns, rows


def write_trials_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)


def best_trial(study: Any) -> Any:
    """The best COMPLETE trial, or ``None``."""
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    if not done:
        return None
    sign = 1.0 if study.direction.name == "MAXIMIZE" else -1.0
    return max(done, key=lambda t: (sign * t.value, -t.number))


def top_trials(study: Any, n: int = 10) -> list[Any]:
    """The ``n`` best COMPLETE trials, best first."""
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    sign = -1.0 if study.direction.name == "MAXIMIZE" else 1.0
    return sorted(done, key=lambda t: (sign * t.value, t.number))[:n]


def write_best_config(path: Path, trial: Any, study_name: str, metric: str, space: Any = None) -> None:
    """The best trial's resolved config as YAML, with a header saying where it comes from.

    The config is the one the trial ran (user attribute ``config``); for a trial that
    lacks it, it is rebuilt from the trial's parameters with ``optuna.trial.FixedTrial``.
    """
    from gnnrec.config import config_from_dict, dump_config

    raw = trial.user_attrs.get("config")
    if raw is None:
        if space is None:
            return
        import optuna

        raw = space.trial_config(optuna.trial.FixedTrial(dict(trial.params)))
    cfg = config_from_dict(raw)
    params = ", ".join(f"{k}={v!r}" for k, v in trial.params.items())
    header = (
        f"# Best trial {trial.number} of sweep study '{study_name}': valid {metric} = {trial.value:.6g}\n"
        f"# parameters: {params}\n"
        f"# Run it: gnnrec run {path.name}\n"
    )
    path.write_text(header + dump_config(cfg))


def write_plots(study: Any, out: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """Optuna's matplotlib figures as PNG; a plot that cannot be drawn gets a note."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as ovm

    funcs: dict[str, Any] = {
        "optimization_history": ovm.plot_optimization_history,
        "param_importances": ovm.plot_param_importances,
        "intermediate_values": ovm.plot_intermediate_values,
    }
    paths: dict[str, Path] = {}
    notes: dict[str, str] = {}
    for name, fn in funcs.items():
        path = out / f"{name}.png"
        path.unlink(missing_ok=True)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ExperimentalWarning, tight-layout notes
                ax = fn(study)
                fig = (ax.flat[0] if hasattr(ax, "flat") else ax).get_figure()
                fig.set_size_inches(8, 5)
                fig.tight_layout()
                fig.savefig(path, dpi=100)
                plt.close(fig)
            paths[name] = path
        except (ValueError, RuntimeError, ZeroDivisionError, IndexError) as err:
            notes[name] = f"not drawn: {err}" if str(err) else "not drawn (too few trials)"
            plt.close("all")
        except optuna.exceptions.OptunaError as err:
            notes[name] = f"not drawn: {err}"
            plt.close("all")
    return paths, notes


def write_report_html(
    path: Path,
    *,
    study_name: str,
    storage: str,
    metric: str,
    columns: list[str],
    rows: list[dict[str, Any]],
    best: Any,
    plots: dict[str, Path],
    notes: dict[str, str],
) -> None:
    """One self-contained page: summary, best trial, the plots (inline PNG), trials table."""
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>gnnrec sweep {e(study_name)}</title>",
        (
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}"
            "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}img{max-width:100%}</style>"
        ),
        "</head><body>",
        f"<h1>Sweep study {e(study_name)}</h1>",
        f"<p>storage: <code>{e(storage)}</code>; objective: validation {e(metric)}</p>",
    ]
    if best is not None:
        params = ", ".join(f"{e(k)} = {e(repr(v))}" for k, v in best.params.items())
        parts.append(f"<p><b>best trial {best.number}</b>: {e(metric)} = {best.value:.6g}; {params}</p>")
    for name in PLOTS:
        parts.append(f"<h2>{e(name.replace('_', ' '))}</h2>")
        if name in plots:
            data = base64.b64encode(plots[name].read_bytes()).decode("ascii")
            parts.append(f"<img alt='{e(name)}' src='data:image/png;base64,{data}'>")
        else:
            parts.append(f"<p>{e(notes.get(name, 'not drawn'))}</p>")
    parts.append("<h2>trials</h2><table><tr>" + "".join(f"<th>{e(c)}</th>" for c in columns) + "</tr>")
    for r in rows:
        parts.append("<tr>" + "".join(f"<td>{e(str(r.get(c, '')))}</td>" for c in columns) + "</tr>")
    parts.append("</table></body></html>")
    path.write_text("\n".join(parts))


def write_tensorboard(study: Any, tb_dir: Path, metric: str) -> None:
    """One TensorBoard HPARAMS entry per finished trial under ``tb_dir/trial-NNNN``."""
    from optuna.trial import TrialState

    from gnnrec.train.callbacks import TensorBoardCallback

    if tb_dir.exists():
        shutil.rmtree(tb_dir)  # rebuilt from the storage each time: no duplicate entries
    tb_dir.mkdir(parents=True)
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        hp: dict[str, Any] = {"state": t.state.name}
        hp.update(t.params)
        metrics: dict[str, float] = {}
        if t.value is not None:
            metrics[f"hparam/valid_{metric}"] = float(t.value)
        elif t.intermediate_values:
            metrics[f"hparam/valid_{metric}"] = float(t.intermediate_values[max(t.intermediate_values)])
        for k, v in (t.user_attrs.get("test") or {}).items():
            metrics[f"hparam/test_{k}"] = float(v)
        tb = TensorBoardCallback(tb_dir / f"trial-{t.number:04d}")
        tb.write_hparams(hp, metrics)
        tb.close()


def write_outputs(
    study: Any, sweep_dir: Path, *, metric: str, storage: str, space: Any = None
) -> SweepOutputs:
    """Write every output of the sweep directory from the study (see the module docstring)."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    metric_names: list[str] = []
    for t in study.get_trials(deepcopy=False):
        for m in t.user_attrs.get("test") or {}:
            if m not in metric_names:
                metric_names.append(m)
    order = list(space.params) if space is not None else []
    columns, rows = trial_rows(study, metric_names, order)
    trials_csv = sweep_dir / "trials.csv"
    write_trials_csv(trials_csv, columns, rows)

    best = best_trial(study)
    best_path: Path | None = None
    if best is not None:
        best_path = sweep_dir / "best_config.yaml"
        write_best_config(best_path, best, study.study_name, metric, space)

    plots, notes = write_plots(study, sweep_dir)
    report = sweep_dir / "report.html"
    write_report_html(
        report,
        study_name=study.study_name,
        storage=storage,
        metric=metric,
        columns=columns,
        rows=rows,
        best=best,
        plots=plots,
        notes=notes,
    )
    tb_dir = sweep_dir / "tb"
    write_tensorboard(study, tb_dir, metric)
    return SweepOutputs(
        sweep_dir=sweep_dir,
        trials_csv=trials_csv,
        best_config=best_path,
        best_number=best.number if best is not None else None,
        best_value=float(best.value) if best is not None else None,
        plots=plots,
        plot_notes=notes,
        report_html=report,
        tb_dir=tb_dir,
    )


def top_table(study: Any, metric: str, n: int = 10, order: Sequence[str] = ()) -> Any:
    """A rich table of the ``n`` best complete trials."""
    from rich.table import Table

    from gnnrec.sweep.space import format_value

    top = top_trials(study, n)
    names = _param_names(top, list(order))
    table = Table(title=f"sweep {study.study_name}: top {len(top)} trials (valid {metric})")
    for col in ("#", "trial", f"valid {metric}", *names, "epochs", f"test {metric}"):
        table.add_column(col, justify="right")
    for rank, t in enumerate(top, 1):
        test = (t.user_attrs.get("test") or {}).get(metric)
        table.add_row(
            str(rank),
            str(t.number),
            format_value(t.value),
            *(format_value(t.params[k]) if k in t.params else "-" for k in names),
            str(t.user_attrs.get("epochs", "-")),
            format_value(test) if test is not None else "-",
        )
    return table
