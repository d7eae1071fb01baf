"""The search space of a sweep: parsing, up-front validation, and trial → config dict.

A ``sweep:`` block names config values by dotted path, the same paths ``--set`` takes::

    sweep:
      metric: ndcg@20
      fixed: {train.epochs: 20}                       # every trial
      params:
        train.lr: {type: float, low: 1.0e-4, high: 3.0e-2, log: true}
        model.params.dim: {type: categorical, choices: [32, 64, 128]}
      hook: my_spaces:conditional                      # optional

:meth:`SearchSpace.from_config` checks everything before the first trial runs, so a typo
costs no training time: every path must exist in the config schema (``model.params.*``
against the model's own config class), every bound / choice must give a valid config, the
metric must be evaluated, and the hook must import. Errors are
:class:`~gnnrec.errors.ConfigError` naming the key path, like the rest of the config.

The hook is ``module:function``; it is called as ``function(trial, cfg_dict)`` after the
declarative ``params`` were applied, may call ``trial.suggest_*`` for conditional
dimensions and edits ``cfg_dict`` (the nested raw config) in place or returns a new dict.
Its module is imported from ``sys.path`` or, failing that, from the config file's folder::

    def conditional(trial, cfg):
        model = trial.suggest_categorical("model.name", ["mf_bpr", "lightgcn"])
        cfg["model"] = {"name": model, "params": {"dim": 64}}
        if model == "lightgcn":
            cfg["model"]["params"]["layers"] = trial.suggest_int("model.params.layers", 1, 4)
"""

from __future__ import annotations

import importlib
import math
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from gnnrec.config import (
    ExperimentConfig,
    SweepConfig,
    SweepParam,
    _deepcopy,
    config_from_dict,
    validate_section,
)
from gnnrec.errors import ConfigError

#: Top-level keys a sweep may not touch: the sweep block itself and the comparison list
#: (a trial runs ``model`` only).
FORBIDDEN_ROOTS = ("sweep", "compare")

Hook = Callable[[Any, dict[str, Any]], "dict[str, Any] | None"]


# ------------------------------------------------------------------ dotted paths
def set_path(d: dict[str, Any], path: str, value: Any) -> None:
    """Set ``d[a][b][c] = value`` for ``path = "a.b.c"``, creating missing sections.

    The same semantics as ``--set a.b.c=value`` (:func:`gnnrec.config.apply_overrides`),
    but with an already typed value (a float from Optuna must not go through YAML, where
    ``1e-05`` would read as a string).
    """
    parts = path.split(".")
    node = d
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part)
        if nxt is None:
            nxt = {}
            node[part] = nxt
        elif not isinstance(nxt, dict):
            raise ConfigError(f"'{'.'.join(parts[: i + 1])}' is not a section")
        node = nxt
    node[parts[-1]] = value


def _model_classes(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic model classes inside a field annotation (``X``, ``X | None``, ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [c for a in typing.get_args(annotation) for c in _model_classes(a)]


def _is_mapping(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (dict, Mapping):
        return True
    return any(_is_mapping(a) for a in typing.get_args(annotation) if a is not type(None))


def check_path(path: str, model_names: list[str]) -> None:
    """Check that ``path`` names a value of the experiment config schema.

    Args:
        path: dotted path, e.g. ``train.lr`` or ``model.params.dim``.
        model_names: models whose config classes ``model.params.<key>`` may refer to (the
            config's model, or every choice when ``model.name`` itself is swept).

    Raises:
        ValueError: the path is empty, unknown, goes inside a plain value, or touches
            ``sweep`` / ``compare``. The message names the unknown part.
    """
    from gnnrec.models import MODELS

    parts = path.split(".")
    if any(not p for p in parts):
        raise ValueError(f"'{path}' is not a dotted config path")
    if parts[0] in FORBIDDEN_ROOTS:
        raise ValueError(f"'{parts[0]}' cannot be swept (a trial runs `model` only, without a sweep block)")
    cls: type[BaseModel] = ExperimentConfig
    where = "the top level"
    for i, part in enumerate(parts):
        here = ".".join(parts[: i + 1])
        if cls is not None and here == "model.params":
            if i == len(parts) - 1:
                return  # a whole params mapping
            key = parts[i + 1]
            classes = [MODELS.meta(n)["config"] for n in model_names if n in MODELS]
            if classes and not any(key in c.model_fields for c in classes):
                known = sorted({f for c in classes for f in c.model_fields})
                raise ValueError(
                    f"unknown config key '{key}' in model.params of {'/'.join(model_names)} "
                    f"(known: {', '.join(known)})"
                )
            return  # deeper keys of a model parameter are the model's business
        fields = cls.model_fields
        if part not in fields:
            raise ValueError(f"unknown config key '{part}' in {where} (known: {', '.join(sorted(fields))})")
        annotation = fields[part].annotation
        if i == len(parts) - 1:
            return
        sub = _model_classes(annotation)
        if sub:
            cls, where = sub[0], here
            continue
        if _is_mapping(annotation):
            if i + 2 == len(parts):
                return  # one free key of a mapping (data.columns.user)
            raise ValueError(f"'{'.'.join(parts[: i + 2])}' is not a section")
        raise ValueError(f"'{here}' is a value, not a section")


# ------------------------------------------------------------------ hook
def load_hook(spec: str, search_dir: str | Path | None = None) -> Hook:
    """Import ``module:function``; the module is looked up on ``sys.path``, then in
    ``search_dir`` (the config file's folder)."""
    module_name, _, func_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as first:
        if search_dir is None or not (Path(search_dir) / (module_name.replace(".", "/") + ".py")).is_file():
            raise ConfigError(f"sweep.hook: cannot import module '{module_name}': {first}") from None
        folder = str(Path(search_dir).resolve())
        if folder not in sys.path:
            sys.path.insert(0, folder)
        try:
            module = importlib.import_module(module_name)
        except Exception as err:  # noqa: BLE001 - the hook's own import error, reported
            raise ConfigError(f"sweep.hook: cannot import module '{module_name}': {err}") from None
    except Exception as err:  # noqa: BLE001 - a failing user module is a config error
        raise ConfigError(f"sweep.hook: cannot import module '{module_name}': {err}") from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ConfigError(f"sweep.hook: module '{module_name}' has no function '{func_name}'")
    return func


# ------------------------------------------------------------------ the space
def _evaluated_metrics(cfg: ExperimentConfig) -> list[str]:
    return [f"{m}@{k}" for k in cfg.eval.ks for m in cfg.eval.metrics]


def _bounds(p: SweepParam) -> tuple[float, float]:
    assert p.low is not None and p.high is not None  # SweepParam checked them
    return float(p.low), float(p.high)


def _candidates(p: SweepParam) -> list[Any]:
    """Values that every trial's config must accept: the bounds, or every choice."""
    if p.type == "categorical":
        return list(p.choices or ())
    low, high = _bounds(p)
    return [int(low), int(high)] if p.type == "int" else [low, high]


def suggest(trial: Any, name: str, p: SweepParam) -> Any:
    """Draw one value of ``p`` from an Optuna trial (the dotted path is the param name)."""
    if p.type == "categorical":
        return trial.suggest_categorical(name, list(p.choices or ()))
    low, high = _bounds(p)
    if p.type == "int":
        return trial.suggest_int(name, int(low), int(high), log=p.log, step=int(p.step or 1))
    return trial.suggest_float(name, low, high, log=p.log, step=p.step)


@dataclass
class SearchSpace:
    """A validated sweep: the base config dict plus the dimensions drawn per trial.

    Attributes:
        base: raw config dict of every trial before sampling: the experiment with
            ``sweep.fixed`` applied, ``compare`` emptied and ``sweep`` removed (so a trial's
            ``config.yaml`` is a plain runnable config).
        sweep: the validated ``sweep`` block.
        metric: validation metric optimised (``name@K``).
        hook: the conditional-space function, or ``None``.
        config_dir: folder the hook module may be imported from.
    """

    base: dict[str, Any]
    sweep: SweepConfig
    metric: str
    hook: Hook | None = None
    config_dir: str | None = None

    @property
    def params(self) -> dict[str, SweepParam]:
        return dict(self.sweep.params)

    @property
    def direction(self) -> str:
        return self.sweep.direction

    @classmethod
    def from_config(cls, cfg: ExperimentConfig, config_dir: str | Path | None = None) -> SearchSpace:
        """Validate ``cfg.sweep`` against ``cfg`` (see the module docstring).

        Raises:
            ConfigError: no sweep block, an unknown path, an invalid bound or choice, a
                metric that is not evaluated, or a hook that does not import.
        """
        import gnnrec.models  # noqa: F401  (fills the model registry for path checks)

        sweep = cfg.sweep
        if sweep is None:
            raise ConfigError("no `sweep:` block (see experiments/quickstart.yaml for an example)")
        raw = cfg.model_dump(mode="json")
        raw["sweep"] = None
        raw["compare"] = []
        model_names = [cfg.model.name]

        for path, value in sweep.fixed.items():
            try:
                check_path(path, model_names)
                set_path(raw, path, _deepcopy(value))
            except (ValueError, ConfigError) as err:
                raise ConfigError(f"sweep.fixed.{path}: {err}") from None
        try:
            base_cfg = config_from_dict(raw)
        except ConfigError as err:
            raise ConfigError(f"sweep.fixed: the config with these values is invalid: {err}") from None
        base = base_cfg.model_dump(mode="json")

        name_param = sweep.params.get("model.name")
        if name_param is not None:
            model_names = [str(c) for c in _candidates(name_param)]
        for path, p in sweep.params.items():
            try:
                check_path(path, model_names)
            except ValueError as err:
                raise ConfigError(f"sweep.params.{path}: {err}") from None
            for value in _candidates(p):
                trial_raw = _deepcopy(base)
                try:
                    set_path(trial_raw, path, value)
                    trial_cfg = config_from_dict(trial_raw)
                    if name_param is None:
                        from gnnrec.models import MODELS

                        validate_section(
                            MODELS.meta(trial_cfg.model.name)["config"],
                            trial_cfg.model.params,
                            "model.params",
                        )
                except ConfigError as err:
                    raise ConfigError(
                        f"sweep.params.{path}: {value!r} gives an invalid config: {err}"
                    ) from None

        metric = sweep.metric or base_cfg.train.monitor
        evaluated = _evaluated_metrics(base_cfg)
        if metric not in evaluated:
            raise ConfigError(
                f"sweep.metric: '{metric}' is not an evaluated metric (choose one of {evaluated})"
            )
        hook = load_hook(sweep.hook, config_dir) if sweep.hook else None
        return cls(
            base=base,
            sweep=sweep,
            metric=metric,
            hook=hook,
            config_dir=str(config_dir) if config_dir else None,
        )

    def trial_config(self, trial: Any) -> dict[str, Any]:
        """Draw every dimension from ``trial`` and return the trial's raw config dict.

        Works with any object offering ``suggest_float/int/categorical`` (an Optuna
        ``Trial``, or ``optuna.trial.FixedTrial(params)`` to rebuild a trial's config).
        """
        d = _deepcopy(self.base)
        for path, p in self.sweep.params.items():
            set_path(d, path, suggest(trial, path, p))
        if self.hook is not None:
            out = self.hook(trial, d)
            if out is not None:
                if not isinstance(out, dict):
                    raise ConfigError(
                        f"sweep.hook must edit cfg_dict or return a dict, got {type(out).__name__}"
                    )
                d = out
        return d


def ordered_names(names: list[str] | Any, order: list[str]) -> list[str]:
    """Parameter names in the sweep block's order, then any others (hook) sorted."""
    names = list(names)
    return [n for n in order if n in names] + sorted(n for n in names if n not in order)


def format_value(v: Any) -> str:
    """Short text of a parameter value for progress lines and tables."""
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return str(v)
