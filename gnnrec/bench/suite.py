"""Benchmark suites: the YAML schema and its expansion into cells.

A suite is datasets × models × seeds. Each *cell* ``(dataset, model, seed)`` is one
``gnnrec run`` whose :class:`~gnnrec.config.ExperimentConfig` is built from, in order (later
wins):

1. the dataset's ``base`` experiment (a path to an ``experiments/*.yaml`` or an inline
   mapping); its ``compare:`` list is dropped;
2. the model: ``model`` + ``params`` replace the base's ``model`` section, or ``experiment``
   (a path) contributes that file's ``sections`` (default ``model`` and ``train``, the
   model-specific part of a recipe; ``graph`` and ``eval`` may be added), while data and split
   stay the dataset's, so every model of a dataset is compared on the same data;
3. ``set`` overrides (dotted ``--set`` style) of the suite, then of the dataset, then of the
   model, then of every matching ``overrides`` entry, then the command line's ``--set``;
4. ``seed`` and ``name`` of the cell.

Example::

    name: demo
    metrics: [recall@20, ndcg@20]           # table columns; the first is the key metric
    seeds: [0, 1]
    set: [threads=1]
    datasets:
      synthetic:
        base: experiments/quickstart.yaml   # relative to the suite file or one of its parents
        set: [data.synthetic.num_users=500]
        references:                         # optional published numbers (benchmarks/references)
          file: benchmarks/references/gowalla.yaml
          models: {lightgcn: lightgcn}      # our model name -> reference model key
    models:
      - {model: pop}
      - {name: lgcn2, model: lightgcn, params: {dim: 64, num_layers: 2}, set: [train.lr=5e-3]}
      - {experiment: experiments/mf_bpr-ml-100k.yaml}
    overrides:
      - {dataset: synthetic, model: lgcn2, set: [train.epochs=20]}

Every key is checked (``extra="forbid"``): errors name the key path, e.g.
``suite.yaml: models.1.params: unknown key``. :func:`load_suite` also builds and validates
every cell's experiment config, so a suite that loads will run (up to model parameters,
which the model validates when it is built).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gnnrec.config import (
    ExperimentConfig,
    apply_overrides,
    config_from_dict,
    dump_config,
    validate_section,
)
from gnnrec.errors import ConfigError

#: Dataset and model names become directory names: keep them portable.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+=-]*$")
DEFAULT_METRICS: tuple[str, ...] = ("recall@20", "ndcg@20")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _check_name(v: str | None) -> str | None:
    if v is not None and not NAME_RE.match(v):
        raise ValueError(f"'{v}' is not a valid name (letters, digits and _ . + = -, starting with a letter or digit)")
    return v


def _check_overrides(v: list[str]) -> list[str]:
    for text in v:
        key, sep, _ = text.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected key.path=value, got '{text}'")
    return v


class ReferenceSpec(_Strict):
    """Published numbers to compare with (a file in the format of ``benchmarks/references``)."""

    file: str  # YAML with `sources:` (citations) and `models:` (published metrics per model key)
    models: dict[str, str] = Field(default_factory=dict)  # our model name -> reference model key; default: same name
    source: str | None = None  # which published source to use; None = the first one listing the metric
    scale: float = Field(1.0, gt=0)  # published value x scale = our unit (0.01 for numbers in percent)


class DatasetEntry(_Strict):
    """One dataset of the suite: the base experiment its cells start from."""

    base: str | dict[str, Any]  # experiments/*.yaml path, or an inline experiment mapping
    set_: list[str] = Field(default_factory=list, alias="set")  # overrides for this dataset's cells
    references: ReferenceSpec | None = None  # published numbers for this dataset

    @field_validator("set_")
    @classmethod
    def _overrides(cls, v: list[str]) -> list[str]:
        return _check_overrides(v)


class ModelEntry(_Strict):
    """One model of the suite: a registry name with parameters, or an experiment file."""

    name: str | None = None  # row name in the tables and directory name; default: the model's registry name
    model: str | None = None  # registry name (`gnnrec models`)
    params: dict[str, Any] | None = None  # hyper-parameters (with `model`); None = the model's defaults
    experiment: str | None = None  # experiments/*.yaml whose `sections` are used
    sections: tuple[Literal["model", "train", "graph", "eval"], ...] = ("model", "train")  # taken from `experiment`
    set_: list[str] = Field(default_factory=list, alias="set")  # overrides for this model's cells

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        return _check_name(v)
    @field_validator("set_")
    @classmethod
    def _overrides(cls, v: list[str]) -> list[str]:
        return _check_overrides(v)

    @model_validator(mode="after")
    def _one_source(self) -> ModelEntry:
        if (self.model is None) == (self.experiment is None):
            raise ValueError("give exactly one of 'model' (registry name) or 'experiment' (file)")
        if self.experiment is not None and self.params is not None:
            raise ValueError("'params' goes with 'model'; an 'experiment' brings its own model.params")
        if self.experiment is None and "sections" in self.model_fields_set:
            raise ValueError("'sections' goes with 'experiment'")
        return self


class OverrideEntry(_Strict):
    """Extra overrides for the cells of one dataset and/or one model."""

    dataset: str | None = None  # dataset name; None = every dataset
    model: str | None = None  # model name; None = every model
    set_: list[str] = Field(alias="set")  # dotted key=value overrides

    @field_validator("set_")
    @classmethod
    def _overrides(cls, v: list[str]) -> list[str]:
        return _check_overrides(v)


class SuiteConfig(_Strict):
    """A benchmark suite: datasets × models × seeds (see the module docstring)."""

    name: str  # suite name (default output directory runs/bench/<name>)
    description: str = ""  # one line shown above the tables
    metrics: list[str] = Field(default_factory=lambda: list(DEFAULT_METRICS))  # test metrics in the tables; first = key
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)  # one cell per seed
    set_: list[str] = Field(default_factory=list, alias="set")  # overrides for every cell
    datasets: dict[str, DatasetEntry] = Field(min_length=1)  # dataset name -> entry
    models: list[ModelEntry] = Field(min_length=1)  # models run on every dataset
    overrides: list[OverrideEntry] = Field(default_factory=list)  # per dataset / model overrides
    references: ReferenceSpec | None = None  # published numbers for datasets without their own

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        return _check_name(v)
    @field_validator("set_")
    @classmethod
    def _overrides(cls, v: list[str]) -> list[str]:
        return _check_overrides(v)

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one metric is needed")
        for m in v:
            name, sep, k = m.partition("@")
            if not sep or not name or not k.isdigit():
                raise ValueError(f"metrics are written name@K (e.g. recall@20), got '{m}'")
        if len(set(v)) != len(v):
            raise ValueError(f"metrics must be unique, got {v}")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError(f"seeds must be unique, got {v}")
        return v

    @field_validator("datasets")
    @classmethod
    def _dataset_names(cls, v: dict[str, DatasetEntry]) -> dict[str, DatasetEntry]:
        for name in v:
            _check_name(name)
        return v


@dataclass(frozen=True)
class Cell:
    """One run of a suite.

    Attributes:
        dataset: dataset name (suite key).
        model: model name (row name).
        seed: the run's seed.
        index: 1-based position in the suite's cell order.
        config: the resolved experiment config of the run.
        data_key: what the prepared data depends on; cells with equal keys share it.
    """

    dataset: str
    model: str
    seed: int
    index: int
    config: ExperimentConfig
    data_key: str

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.dataset, self.model, self.seed)

    def run_dir(self, out: str | Path) -> Path:
        """``<out>/cells/<dataset>/<model>/seed-<seed>``."""
        return Path(out) / "cells" / self.dataset / self.model / f"seed-{self.seed}"

    @property
    def config_hash(self) -> str:
        """Hash of the resolved config (a finished cell with another hash is stale)."""
        return hashlib.sha256(dump_config(self.config).encode()).hexdigest()[:16]


@dataclass
class Suite:
    """A loaded suite: the validated schema, where it came from, its cells and references."""

    config: SuiteConfig
    path: Path | None
    cells: list[Cell]
    references: dict[str, dict[str, Any]] = field(default_factory=dict)  # dataset -> loaded reference file
    reference_specs: dict[str, ReferenceSpec] = field(default_factory=dict)  # dataset -> spec
    reference_paths: dict[str, Path] = field(default_factory=dict)  # dataset -> reference file
    source: Any = None  # what load_suite was given (a path or a mapping): worker processes reload it
    base_dir: Path | None = None  # load_suite's base_dir
    overrides: list[str] = field(default_factory=list)  # load_suite's overrides

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def metrics(self) -> list[str]:
        return list(self.config.metrics)

    @property
    def datasets(self) -> list[str]:
        return list(self.config.datasets)

    @property
    def models(self) -> list[str]:
        return [model_name(m) for m in self.config.models]


def model_name(entry: ModelEntry, experiment: Mapping[str, Any] | None = None) -> str:
    """The row name of a model entry: ``name``, else the registry name (from the experiment)."""
    if entry.name:
        return entry.name
    if entry.model:
        return entry.model
    name = (experiment or {}).get("model", {}).get("name") if isinstance(experiment, Mapping) else None
    if name:
        return str(name)
    # Without the file read: the file stem up to the first '-' (mf_bpr-ml-100k.yaml -> mf_bpr).
    return Path(entry.experiment or "model").stem.split("-")[0]


def resolve_path(text: str, base_dir: Path | None, what: str) -> Path:
    """Find a file named in a suite: absolute, else relative to the suite's folder or one of
    its parents (so ``experiments/x.yaml`` works from ``benchmarks/suites/``), else to the
    working directory."""
    p = Path(text).expanduser()
    if p.is_absolute():
        if p.is_file():
            return p
        raise ConfigError(f"{what}: file '{text}' not found")
    tried: list[Path] = []
    if base_dir is not None:
        for d in (base_dir, *base_dir.parents):
            tried.append(d)
            if (d / p).is_file():
                return d / p
    if p.is_file():
        return p.resolve()
    where = f"{base_dir} and its parents, and the working directory" if base_dir is not None else "the working directory"
    raise ConfigError(f"{what}: file '{text}' not found (looked in {where})")


def _read_yaml(path: Path, what: str) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{what}: {path}:{where} invalid YAML: {getattr(err, 'problem', err)}") from None


def _mapping(raw: Any, what: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{what}: an experiment must be a mapping, got {type(raw).__name__}")
    return dict(raw)


def data_key(cfg: ExperimentConfig) -> str:
    """What :func:`gnnrec.runner.prepare_data` depends on: cells with the same key (within a
    dataset) reuse one prepared data set."""
    parts = {
        "seed": cfg.seed,
        "data": cfg.data.model_dump(mode="json"),
        "split": cfg.split.model_dump(mode="json"),
        "graph": cfg.graph.model_dump(mode="json"),
        "positives": cfg.train.positives,
        "mask": cfg.eval.mask,
    }
    return json.dumps(parts, sort_keys=True)


def parse_suite(raw: Any, source: str = "suite") -> SuiteConfig:
    """Validate a raw suite mapping; errors are ``source: key.path: message``."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: a suite must be a mapping at the top level, got {type(raw).__name__}")
    try:
        suite = validate_section(SuiteConfig, raw, "")
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    assert isinstance(suite, SuiteConfig)
    return suite


def load_suite(
    path_or_raw: str | Path | Mapping[str, Any],
    overrides: Iterable[str] = (),
    *,
    base_dir: str | Path | None = None,
) -> Suite:
    """Load, validate and expand a suite.

    Args:
        path_or_raw: a suite YAML file, or an already-parsed mapping.
        overrides: ``key=value`` overrides applied to every cell after the suite's own.
        base_dir: folder relative paths start from for a mapping (default: the working
            directory); a file's own folder is used for a file.

    Returns:
        The suite with every cell's resolved config.

    Raises:
        ConfigError: a schema error (naming the key path), a missing file, an unknown name
            in ``overrides`` / ``references``, or an invalid cell config.
    """
    overrides = list(overrides)
    if not isinstance(path_or_raw, (str, Path)):  # a parsed suite (parse_suite checks it is a mapping)
        raw: Any = path_or_raw
        path = None
        src = "suite"
        folder = Path(base_dir).resolve() if base_dir is not None else None
    else:
        path = Path(path_or_raw)
        if not path.is_file():
            raise ConfigError(f"{path}: suite file not found")
        src = str(path)
        raw = _read_yaml(path, "suite")
        folder = path.resolve().parent
    cfg = parse_suite(raw, src)
    suite = _expand(cfg, path, folder, list(overrides), src)
    suite.source = str(path) if path is not None else dict(raw)
    suite.base_dir = Path(base_dir).resolve() if base_dir is not None else None
    suite.overrides = list(overrides)
    return suite


def _expand(cfg: SuiteConfig, path: Path | None, folder: Path | None, cli: list[str], src: str) -> Suite:
    # Model entries: their section(s) and names.
    model_parts: list[tuple[str, dict[str, Any], ModelEntry]] = []
    for i, m in enumerate(cfg.models):
        if m.experiment is not None:
            exp_path = resolve_path(m.experiment, folder, f"{src}: models.{i}.experiment")
            exp = _mapping(_read_yaml(exp_path, f"{src}: models.{i}.experiment") or {}, f"{src}: models.{i}.experiment")
            part: dict[str, Any] = {str(k): exp[k] for k in m.sections if k in exp}
            name = model_name(m, exp)
        else:
            part = {"model": {"name": m.model, "params": dict(m.params or {})}}
            name = model_name(m)
        if not NAME_RE.match(name):
            raise ConfigError(f"{src}: models.{i}.name: '{name}' is not a valid name")
        model_parts.append((name, part, m))
    names = [n for n, _, _ in model_parts]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(
            f"{src}: models: duplicate model name(s) {dup}; give each entry a distinct 'name'"
        )
    for i, o in enumerate(cfg.overrides):
        if o.dataset is not None and o.dataset not in cfg.datasets:
            raise ConfigError(f"{src}: overrides.{i}.dataset: unknown dataset '{o.dataset}' (suite datasets: {list(cfg.datasets)})")
        if o.model is not None and o.model not in names:
            raise ConfigError(f"{src}: overrides.{i}.model: unknown model '{o.model}' (suite models: {names})")

    suite = Suite(config=cfg, path=path, cells=[])
    # References: per dataset, else the suite's.
    for ds_name, ds in cfg.datasets.items():
        spec = ds.references or cfg.references
        if spec is None:
            continue
        where = f"datasets.{ds_name}.references" if ds.references is not None else "references"
        ref_path = resolve_path(spec.file, folder, f"{src}: {where}.file")
        refs = _read_yaml(ref_path, f"{src}: {where}.file") or {}
        if isinstance(refs, Mapping) and "models" not in refs and isinstance(refs.get("runs"), Mapping):
            refs = {**refs, "models": refs["runs"]}  # sessions.yaml lists published rows under `runs:`
        if not isinstance(refs, Mapping) or not isinstance(refs.get("models"), Mapping):
            raise ConfigError(f"{src}: {where}.file: {ref_path} has no 'models:' mapping")
        for ours, theirs in spec.models.items():
            if ours not in names:
                raise ConfigError(f"{src}: {where}.models.{ours}: unknown model '{ours}' (suite models: {names})")
            if theirs not in refs.get("models", {}):
                raise ConfigError(
                    f"{src}: {where}.models.{ours}: '{theirs}' is not a model of {ref_path.name} "
                    f"(has: {list(refs.get('models', {}))})"
                )
        if spec.source is not None and spec.source not in refs.get("sources", {}):
            raise ConfigError(f"{src}: {where}.source: unknown source '{spec.source}' (has: {list(refs.get('sources', {}))})")
        suite.references[ds_name] = dict(refs)
        suite.reference_specs[ds_name] = spec
        suite.reference_paths[ds_name] = ref_path

    index = 0
    for ds_name, ds in cfg.datasets.items():
        if isinstance(ds.base, str):
            base_path = resolve_path(ds.base, folder, f"{src}: datasets.{ds_name}.base")
            base = _mapping(_read_yaml(base_path, f"{src}: datasets.{ds_name}.base") or {}, f"{src}: datasets.{ds_name}.base")
        else:
            base = dict(ds.base)
        base.pop("compare", None)  # a suite's models replace an experiment's comparison list
        base.pop("sweep", None)
        for seed in cfg.seeds:
            for name, part, entry in model_parts:
                raw: dict[str, Any] = {**base, **part}
                sets = [*cfg.set_, *ds.set_, *entry.set_]
                for o in cfg.overrides:
                    if o.dataset in (None, ds_name) and o.model in (None, name):
                        sets += o.set_
                sets += cli
                where = f"{src}: cell {ds_name}/{name}/seed-{seed}"
                try:
                    data = apply_overrides(raw, sets)
                    data["seed"] = seed
                    data["name"] = f"{cfg.name}-{ds_name}-{name}"
                    cell_cfg = config_from_dict(data)
                except ConfigError as err:
                    raise ConfigError(f"{where}: {err}") from None
                _check_metrics(cfg.metrics, cell_cfg, where)
                index += 1
                suite.cells.append(Cell(ds_name, name, seed, index, cell_cfg, f"{ds_name}|{data_key(cell_cfg)}"))
    return suite


def _check_metrics(metrics: Sequence[str], cfg: ExperimentConfig, where: str) -> None:
    for m in metrics:
        name, _, k = m.partition("@")
        if name not in cfg.eval.metrics or int(k) not in cfg.eval.ks:
            raise ConfigError(
                f"{where}: metrics: '{m}' is not evaluated (eval.metrics {list(cfg.eval.metrics)}, "
                f"eval.ks {list(cfg.eval.ks)})"
            )


def validate_models(cells: Iterable[Cell]) -> None:
    """Check every cell's model name and ``model.params`` against the model registry, so a
    typo fails before hours of other cells run (imports torch and the models)."""
    from gnnrec.models import MODELS

    seen: set[tuple[str, str]] = set()
    names = MODELS.names()
    for c in cells:
        spec = c.config.model
        key = (spec.name, json.dumps(spec.params, sort_keys=True, default=str))
        if key in seen:
            continue
        seen.add(key)
        where = f"cell {c.dataset}/{c.model}/seed-{c.seed}"
        if spec.name not in names:
            raise ConfigError(f"{where}: model.name: unknown model '{spec.name}' (registered: {list(names)})")
        try:
            validate_section(MODELS.meta(spec.name)["config"], spec.params, "model.params")
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None
