"""Reopen a finished run directory for analysis (interest tags, explanations, associations).

A run directory (see :mod:`gnnrec.runner`) keeps the resolved ``config.yaml``, the split
assignment ``split.npz``, the vocabularies and the best weights ``model.pt``. The data is
not copied into it, so :func:`load_run` rebuilds it from the config (same dataset, same
seed) and checks that it is the data the run used: same number of rows, same user
vocabulary. The saved split is authoritative — when the split rebuilt from the config
differs (e.g. code changed how a split mode draws), the saved one is used and the training
graph and evaluation targets are rebuilt from it, with a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from gnnrec.errors import GnnrecError

__all__ = ["LoadedRun", "load_run"]

log = logging.getLogger("gnnrec")


@dataclass
class LoadedRun:
    """A finished run rebuilt for analysis.

    Attributes:
        run_dir: the run directory.
        cfg: its resolved :class:`~gnnrec.config.ExperimentConfig`.
        prepared: :class:`~gnnrec.runner.PreparedData` with the run's own split.
        model: the model in eval mode with the saved weights, or ``None`` (not asked for,
            or not restorable with ``model="optional"``).
        emb: ``model.encode(data)`` under ``torch.no_grad()``, or ``None``.
        note: why the model is missing, when it is.
    """

    run_dir: Path
    cfg: Any
    prepared: Any
    model: Any = None
    emb: Any = None
    note: str = ""

    @property
    def table(self) -> Any:
        return self.prepared.table

    @property
    def split(self) -> Any:
        return self.prepared.split

    @property
    def data(self) -> Any:
        return self.prepared.data


def _require(d: Path, names: tuple[str, ...]) -> None:
    if not d.is_dir():
        raise GnnrecError(f"{d}: run directory not found")
    for name in names:
        if not (d / name).is_file():
            subs = sorted(x.name for x in d.iterdir() if (x / name).is_file())
            hint = f"; a comparison run: pick one of {', '.join(subs)}" if subs else ""
            raise GnnrecError(f"{d / name}: not found (is {d} a finished `gnnrec run` directory?{hint})")


def load_run(
    run_dir: str | Path, *, model: Literal["required", "optional", "none"] = "required"
) -> LoadedRun:
    """Rebuild a finished run: data and split, and (unless ``model="none"``) the model.

    Args:
        run_dir: a directory written by ``gnnrec run`` (for a comparison, one model's
            sub-directory).
        model: ``"required"`` — restore the model or fail; ``"optional"`` — restore it when
            possible, else continue without (``note`` says why); ``"none"`` — data only.

    Raises:
        GnnrecError: missing files, or data that no longer matches the run (row count or user
            vocabulary changed).
    """
    from gnnrec.config import load_config
    from gnnrec.data.types import Split
    from gnnrec.eval.evaluator import build_targets
    from gnnrec.graph.build import build_train_data
    from gnnrec.runner import prepare_data

    d = Path(run_dir)
    _require(d, ("config.yaml", "split.npz") + (("model.pt",) if model == "required" else ()))
    cfg = load_config(d / "config.yaml")
    prepared = prepare_data(cfg)
    table, split = prepared.table, prepared.split
    saved = np.load(d / "split.npz")
    assign = saved["assign"]
    if assign.shape[0] != len(table):
        raise GnnrecError(
            f"{d / 'split.npz'}: has {assign.shape[0]} rows but the data of config.yaml now has "
            f"{len(table)}; the dataset changed since the run"
        )
    if not np.array_equal(assign, split.assign) or int(saved["target"]) != split.target:
        log.warning("the split rebuilt from config.yaml differs from split.npz; using the saved split")
        split = Split(assign=assign.astype(np.int8), target=int(saved["target"]), mode=split.mode)
        prepared = replace(
            prepared,
            split=split,
            data=build_train_data(table, split, cfg.graph, cfg.train.positives),
            valid=build_targets(table, split, "valid", cfg.eval.mask),
            test=build_targets(table, split, "test", cfg.eval.mask),
        )
    vocab = d / "vocab" / "users.csv"
    if vocab.is_file():
        import polars as pl

        ids = pl.read_csv(vocab, schema_overrides={"id": pl.String})["id"].to_numpy().astype(str)
        if ids.shape[0] != table.num_users or not np.array_equal(ids, table.user_ids.astype(str)):
            raise GnnrecError(f"{vocab}: the user vocabulary differs from the data rebuilt from config.yaml")
    loaded = LoadedRun(d, cfg, prepared)
    if model == "none":
        return loaded
    if model == "optional" and not (d / "model.pt").is_file():
        loaded.note = "no model.pt in the run directory"
        return loaded
    try:
        loaded.model, loaded.emb = _restore_model(d, cfg, prepared.data)
    except Exception as err:
        if model == "required":
            if isinstance(err, GnnrecError):
                raise
            raise GnnrecError(f"{d / 'model.pt'}: cannot restore the model ({type(err).__name__}: {err})") from err
        loaded.note = f"model not used ({type(err).__name__}: {err})"
        log.warning(loaded.note)
    return loaded


def _restore_model(d: Path, cfg: Any, data: Any) -> tuple[Any, Any]:
    import torch

    from gnnrec.models import build_model

    m = build_model(cfg.model, data.meta)
    m.prepare(data)
    state = torch.load(d / "model.pt", map_location="cpu", weights_only=True)
    m.load_state_dict(state)
    m.eval()
    with torch.no_grad():
        emb = m.encode(data)
    return m, emb
