"""Typed experiment configuration.

Every section is a frozen pydantic model with ``extra="forbid"``: an unknown key or a
value of the wrong type is a :class:`~gnnrec.errors.ConfigError` naming the dotted key
path (``train.lr: Input should be a valid number``). Defaults live on the fields, with a
one-line comment giving meaning and unit.

``load_config(path, overrides)`` reads YAML and applies ``--set a.b=value`` overrides
(values parsed as YAML scalars, so ``--set train.lr=1e-3`` is a float and
``--set eval.ks=[10,20]`` a list).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gnnrec.errors import ConfigError

DEFAULT_BEHAVIORS: tuple[str, ...] = ("view", "cart", "fav", "buy")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SyntheticConfig(_Section):
    """Parameters of the embedded e-commerce log simulator (``data.dataset: synthetic``)."""

    num_users: int = Field(2000, ge=1)  # users simulated
    num_items: int = Field(3000, ge=1)  # items in the catalogue
    num_categories: int = Field(40, ge=1)  # categories; sizes follow a Zipf law
    events_per_user: float = Field(60.0, gt=0)  # mean number of view events per user (Poisson)
    category_zipf: float = Field(1.1, ge=0)  # Zipf exponent of category sizes
    item_zipf: float = Field(1.0, ge=0)  # Zipf exponent of item popularity inside a category
    interests_per_user: int = Field(3, ge=1)  # categories in a user's sparse interest mixture
    interest_concentration: float = Field(0.5, gt=0)  # Dirichlet concentration of the mixture
    exploration: float = Field(0.05, ge=0, le=1)  # share of views on a uniformly random category
    cart_rate: float = Field(0.25, ge=0, le=1)  # max P(cart | view), scaled by affinity
    fav_rate: float = Field(0.12, ge=0, le=1)  # max P(fav | view), scaled by affinity
    buy_rate: float = Field(0.45, ge=0, le=1)  # max P(buy | cart or fav), scaled by affinity
    start: int = 1_700_000_000  # first timestamp (Unix seconds)
    days: float = Field(30.0, gt=0)  # length of the simulated period in days
    migration_share: float = Field(0.2, ge=0, le=1)  # share of users whose interests switch
    migration_window: tuple[float, float] = (0.4, 0.7)  # switch time, as a fraction of the period
    chunk_users: int = Field(200_000, ge=1)  # users simulated per chunk (bounds memory)


class DataConfig(_Section):
    """Where the behaviour log comes from and how it is validated."""

    dataset: str = "synthetic"  # registry name (`gnnrec datasets`), or "file" for a generic log
    path: str | None = None  # log file for dataset "file" (CSV/TSV, optionally .gz, or Parquet)
    root: str | None = None  # data directory of registered datasets; default env GNNREC_DATA
    variant: str | None = None  # dataset-specific file variant (e.g. taobao: head|timeslice)
    format: Literal["auto", "csv", "tsv", "parquet"] = "auto"  # file format; auto = by suffix
    has_header: bool | None = None  # CSV header row; None = detect
    delimiter: str | None = None  # CSV delimiter; None = detect from the first line
    columns: dict[str, str | int] = Field(default_factory=dict)  # canonical -> file column name/index
    behavior_map: dict[str, str] = Field(default_factory=dict)  # raw behaviour value -> vocabulary name
    behaviors: tuple[str, ...] = DEFAULT_BEHAVIORS  # behaviour vocabulary in funnel order
    default_behavior: str = "view"  # behaviour of every row when the log has no behaviour column
    time_range: tuple[int, int] | None = None  # valid [start, end) Unix seconds; None = 1970..2100
    on_error: Literal["fail", "drop"] = "fail"  # invalid rows: stop at the first, or drop and count
    min_user_interactions: int = Field(0, ge=0)  # k-core: users with fewer events are removed
    min_item_interactions: int = Field(0, ge=0)  # k-core: items with fewer events are removed
    pseudonymize_users: bool = False  # replace raw user ids by a keyed hash in all outputs
    pseudonym_key: str | None = None  # HMAC key; default env GNNREC_PSEUDONYM_KEY
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)  # simulator settings

    @field_validator("behaviors")
    @classmethod
    def _unique_behaviors(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("at least one behaviour is needed")
        if len(set(v)) != len(v):
            raise ValueError(f"behaviours must be unique, got {list(v)}")
        return v


class SplitConfig(_Section):
    """How events become train / valid / test (see gnnrec.data.splits)."""

    mode: Literal["random", "temporal", "leave_last_out", "given", "cold_user", "cold_item"] = "random"
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train/valid/test share (random, temporal)
    target_behavior: str | None = None  # evaluated behaviour; None = dataset default (buy if present)
    min_user_targets: int = Field(1, ge=1)  # random: users need this many target items to be held out
    valid_from_train: bool = True  # given: carve a validation set from training (see valid_carve)
    # given + valid_from_train: `pairs` holds out random target pairs per user like `random`;
    # `last` holds out the last training target event of a random share of the users
    # (sessions), history strictly before it (the next-item protocol of session datasets)
    valid_carve: Literal["pairs", "last"] = "pairs"
    # given + valid_carve pairs: the carved pairs' other-behaviour training events (e.g. the
    # view before a carved buy) leave the graph (`exclude`) or stay (`keep`), as a given
    # test pair's do in datasets like tmall-mb, so validation looks like the test
    valid_context: Literal["exclude", "keep"] = "exclude"
    cold_ratio: float = Field(0.2, gt=0, lt=1)  # cold_user/cold_item: share of eligible users/items held out
    cold_k: int = Field(3, ge=0)  # cold_user: a cold user's first k events (by time) stay in training

    @field_validator("ratios")
    @classmethod
    def _ratios(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(r < 0 for r in v) or abs(sum(v) - 1.0) > 1e-6 or v[0] <= 0:
            raise ValueError(f"ratios must be non-negative, sum to 1 and train > 0, got {list(v)}")
        return v

    @model_validator(mode="after")
    def _context_needs_pair_carve(self) -> SplitConfig:
        if self.valid_context == "keep" and (self.mode != "given" or self.valid_carve != "pairs"):
            raise ValueError(
                "valid_context 'keep' applies to validation pairs carved from a given split "
                f"(mode 'given', valid_carve 'pairs'), got mode '{self.mode}', valid_carve "
                f"'{self.valid_carve}'"
            )
        return self


class FeaturesConfig(_Section):
    """Item side features fused into models that read them (see gnnrec.features)."""

    text_column: str | None = None  # column of the dataset's item table embedded as text (e.g. title)
    numeric_columns: tuple[str, ...] = ()  # numeric item columns, z-normalised with training-item stats
    fusion: Literal["sum", "concat", "gated"] = "concat"  # how features join the ID/category input
    text_model: str = "all-MiniLM-L6-v2"  # sentence embedding model (from the gnnrec[text] extra)
    cache_dir: str | None = None  # text-embedding cache; None = $GNNREC_CACHE or ~/.cache/gnnrec
    batch_size: int = Field(256, ge=1)  # texts embedded per batch


class GraphConfig(_Section):
    """Which training events become message-passing edges."""

    behaviors: tuple[str, ...] | None = None  # behaviours used as edges; None = all
    add_reverse: bool = True  # add rev_<behaviour> item->user and rev_belongs_to edges


class ModelSpec(_Section):
    """A registered model and its hyper-parameters (validated by the model's own config)."""

    name: str = "mf_bpr"  # registry name (`gnnrec models`)
    params: dict[str, Any] = Field(default_factory=dict)  # model hyper-parameters


class TrainConfig(_Section):
    """One generic training loop for every trainable model."""

    epochs: int = Field(50, ge=0)  # maximum number of epochs
    batch_size: int = Field(2048, ge=1)  # positive pairs per step
    lr: float = Field(1e-3, gt=0)  # Adam learning rate
    weight_decay: float = Field(0.0, ge=0)  # Adam weight decay (models add their own L2 too)
    loss: Literal["bpr", "bce", "softmax"] = "bpr"  # BPR, BCE, or sampled softmax (InfoNCE) over the negatives
    num_negatives: int = Field(1, ge=1)  # uniform negatives per positive
    positives: Literal["target", "all"] = "target"  # which training behaviours are positives
    # pairs: an epoch is a permutation of the training pairs (each once); users: as many
    # draws as pairs, each a uniform user then a uniform positive of theirs (the LightGCN /
    # NGCF reference sampler: every user weighs the same); see gnnrec.data.sampling
    pair_sampling: Literal["pairs", "users"] = "pairs"
    patience: int = Field(10, ge=0)  # epochs without improvement before stopping (0 = never)
    eval_every: int = Field(1, ge=1)  # validate every n epochs
    monitor: str = "ndcg@20"  # validation metric for early stopping and model selection
    grad_clip: float | None = Field(None, gt=0)  # clip gradient norm; None = off
    # step decay: lr *= lr_decay after every `lr_decay_every` epochs (SR-GNN: 0.1 every 3);
    # None = constant learning rate
    lr_decay_every: int | None = Field(None, ge=1)
    # or: lr *= lr_decay once at each of these epochs (e.g. [75]: after the plateau)
    lr_decay_at: tuple[int, ...] = ()
    lr_decay: float = Field(0.1, gt=0, le=1)
    temperature: float = Field(0.1, gt=0)  # loss: softmax only: logits are scores / temperature
    # per_pair: num_negatives uniform non-positives per positive; shared: one pool of
    # num_negatives uniform items per batch, scored against every row (one matrix product;
    # models with `supports_shared_negatives`, e.g. lightgcn); in_batch: the pool is the
    # positive items of the batch's first num_negatives pairs (popularity-distributed)
    neg_sampling: Literal["per_pair", "shared", "in_batch"] = "per_pair"
    # multi-channel BPR negatives (per_pair only): each negative is, with probability
    # behavior_negative_share, an item the user has a training event with in one of these
    # behaviours but that is not a positive (e.g. viewed, not bought); see
    # gnnrec.data.sampling.BehaviorNegativeSampler. () = uniform negatives only
    behavior_negatives: tuple[str, ...] = ()
    behavior_negative_share: float = Field(0.5, ge=0, le=1)
    time_budget_min: float | None = Field(None, gt=0)  # stop after this many minutes of training (validation excluded)
    # clock of time_budget_min: wall (perf_counter) or cpu (this process's CPU time: on a
    # shared machine where the process waits or is paused, cpu counts only its own work)
    time_budget_clock: Literal["wall", "cpu"] = "wall"
    checkpoint_every: int | None = Field(None, ge=1)  # write <run dir>/checkpoint.pt every n epochs; None = never
    resume: bool = False  # continue from <run dir>/checkpoint.pt when it exists (gnnrec run --out DIR --set train.resume=true)
    # after early stopping, train a fresh model (same seed) on training + validation pairs
    # for the selected number of epochs and test that one (split modes random and given
    # with carved validation pairs; see gnnrec.runner.refit_split)
    refit: bool = False

    @field_validator("lr_decay_at")
    @classmethod
    def _decay_epochs(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(e < 1 for e in v) or list(v) != sorted(set(v)):
            raise ValueError(f"lr_decay_at must be increasing epochs >= 1, got {list(v)}")
        return v

    @model_validator(mode="after")
    def _one_schedule(self) -> TrainConfig:
        if self.lr_decay_at and self.lr_decay_every is not None:
            raise ValueError("set lr_decay_every or lr_decay_at, not both")
        return self


class EvalConfig(_Section):
    """Full-ranking evaluation."""

    ks: tuple[int, ...] = (10, 20)  # cut-offs K
    metrics: tuple[Literal["recall", "ndcg", "hit", "mrr", "precision"], ...] = (
        "recall",
        "ndcg",
        "hit",
        "mrr",
        "precision",
    )
    batch_size: int = Field(1024, ge=1)  # users scored per batch (bounds memory at B x items)
    mask: Literal["target", "all", "none"] = "target"  # known items excluded from the ranking
    # coverage / diversity / novelty / serendipity of the test lists (metrics.json
    # `beyond_accuracy`): one more scoring pass over the test users; off for huge catalogues
    beyond_accuracy: bool = True

    @field_validator("ks")
    @classmethod
    def _ks(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(k < 1 for k in v):
            raise ValueError(f"ks must be positive integers, got {list(v)}")
        return tuple(sorted(set(v)))


class DriftConfig(_Section):
    """Interest-drift analysis (``gnnrec drift``) and the evaluation buckets of ``metrics.json``
    (see :mod:`gnnrec.drift` and :mod:`gnnrec.eval.buckets`)."""

    window: Literal["quantile", "duration"] = "quantile"  # per-user equal-count windows, or fixed duration
    num_windows: int = Field(50, ge=2)  # quantile: windows per user (equal event counts)
    window_seconds: int = Field(86400, ge=1)  # duration: window length in seconds
    behaviors: tuple[str, ...] | None = None  # behaviours counted; None = all
    min_events: int = Field(5, ge=1)  # events needed on each side of a change / in recent and history
    threshold: float = Field(0.5, ge=0, le=1)  # min JS divergence (bits) before vs after a change
    permutations: int = Field(99, ge=0)  # permutation test of the best split; 0 = threshold only
    alpha: float = Field(0.01, gt=0, le=1)  # permutation p-value needed for a detection
    tolerance: int = Field(172800, ge=0)  # seconds: a detection matches a true change this close
    recent_share: float = Field(0.25, gt=0, lt=1)  # drift score: share of a user's windows that are recent
    bucket_threshold: float = Field(0.2, ge=0, le=1)  # drift score (bits) from which a user is migrating
    history_buckets: tuple[int, ...] = (0, 1, 3, 6, 11)  # lower edges of history-length buckets
    history_behavior: Literal["target", "all"] = "target"  # history length counts these TRAIN events

    @field_validator("history_buckets")
    @classmethod
    def _edges(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or v[0] != 0 or any(b <= a for a, b in zip(v, v[1:])):
            raise ValueError(f"history_buckets must start at 0 and increase strictly, got {list(v)}")
        return v


class RerankConfig(_Section):
    """Re-ranking of a model's scores at test time (see :mod:`gnnrec.explore.rerank`)."""

    strategy: Literal["none", "mmr", "category", "epsilon", "linucb", "thompson"] = "none"  # none = plain top-K
    mmr_lambda: float = Field(0.7, ge=0, le=1)  # mmr: weight of relevance (1 = plain top-K)
    similarity: Literal["embedding", "category"] = "embedding"  # mmr/ILD: cosine of item embeddings or same category
    max_per_category: int = Field(2, ge=1)  # category: at most this many items of one category per list
    epsilon: float = Field(0.1, ge=0, le=1)  # epsilon: probability that a slot shows a random item
    alpha: float = Field(1.0, ge=0)  # linucb: weight of the confidence bonus (0 = plain top-K)
    v: float = Field(1.0, ge=0)  # thompson: scale of the posterior sample (0 = plain top-K)
    ridge: float = Field(1.0, gt=0)  # linucb/thompson: ridge prior lambda of the per-user statistics
    candidates: int = Field(200, ge=1)  # mmr/category: re-rank this many top-scored items
    seed: int | None = None  # generator seed of the random strategies; None = the experiment seed


class ReplayConfig(_Section):
    """Offline replay of held-out events in time order (``gnnrec replay``, :mod:`gnnrec.explore.replay`)."""

    k: int = Field(10, ge=1)  # recommendations per user and step
    steps: int = Field(20, ge=1)  # time slices of the replayed events (equal event counts)
    behaviors: tuple[str, ...] | None = None  # replayed behaviours; None = the target behaviour
    update: bool = True  # streaming update of models that have one (`update(events)`)
    strategies: dict[str, tuple[float, ...]] = Field(  # strategy -> knob values (trade-off curve)
        default_factory=lambda: {
            "topk": (0.0,),
            "mmr": (0.9, 0.7, 0.5),
            "category": (3.0, 2.0, 1.0),
            "epsilon": (0.05, 0.1, 0.2),
            "linucb": (0.5, 1.0, 2.0),
            "thompson": (0.5, 1.0, 2.0),
        }
    )
    max_users_per_step: int | None = Field(None, ge=1)  # subsample users per step (seeded); None = all


class SweepParam(_Section):
    """One dimension of a search space: ``sweep.params.<dotted.config.path>: {...}``.

    ``float``/``int`` take ``low``/``high`` (inclusive) with ``log`` or ``step``;
    ``categorical`` takes ``choices`` (scalars: numbers, strings, booleans, null).
    """

    type: Literal["float", "int", "categorical"]  # Optuna suggest_float / suggest_int / suggest_categorical
    low: float | None = None  # lower bound (float, int)
    high: float | None = None  # upper bound, inclusive (float, int)
    log: bool = False  # sample on a log scale (needs low > 0; not with step)
    step: float | None = Field(None, gt=0)  # grid step (float, int); None = continuous / 1
    choices: tuple[Any, ...] | None = None  # candidate values (categorical)

    @model_validator(mode="after")
    def _consistent(self) -> SweepParam:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("categorical needs a non-empty 'choices' list")
            if self.low is not None or self.high is not None or self.step is not None or self.log:
                raise ValueError("categorical takes only 'choices' (no low/high/step/log)")
            bad = [c for c in self.choices if c is not None and not isinstance(c, (bool, int, float, str))]
            if bad:
                raise ValueError(f"choices must be numbers, strings, booleans or null, got {bad[0]!r}")
            return self
        if self.choices is not None:
            raise ValueError(f"{self.type} takes 'low' and 'high', not 'choices'")
        if self.low is None or self.high is None:
            raise ValueError(f"{self.type} needs 'low' and 'high'")
        if self.type == "int" and not all(
            float(v).is_integer() for v in (self.low, self.high, self.step) if v is not None
        ):
            raise ValueError("int needs integer 'low', 'high' and 'step'")
        if self.low >= self.high:
            raise ValueError(f"low must be less than high, got low={self.low} high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"log scale needs low > 0, got low={self.low}")
        if self.log and self.step is not None:
            raise ValueError("log and step cannot be combined")
        return self


class SweepPruner(_Section):
    """Early stopping of unpromising trials on the per-epoch validation metric."""

    type: Literal["none", "median", "hyperband"] = "median"  # Optuna MedianPruner / HyperbandPruner
    startup_trials: int = Field(2, ge=0)  # median: finished trials before any pruning
    warmup_epochs: int = Field(2, ge=0)  # median: epochs a trial runs before it can be pruned
    min_epochs: int = Field(1, ge=1)  # hyperband: min_resource (max_resource = train.epochs)
    reduction_factor: int = Field(3, ge=2)  # hyperband: successive-halving rate


class SweepConfig(_Section):
    """Optuna search over dotted config paths (``gnnrec sweep CONFIG.yaml``)."""

    metric: str | None = None  # validation metric to optimise (name@K); None = train.monitor
    direction: Literal["maximize", "minimize"] = "maximize"
    trials: int = Field(20, ge=1)  # finished (complete + pruned) trials to reach; --trials overrides
    sampler: Literal["tpe", "random"] = "tpe"
    seed: int | None = None  # sampler seed (worker i uses seed + i); None = the experiment seed
    startup_trials: int = Field(10, ge=0)  # tpe: random trials before the model-based proposals
    pruner: SweepPruner = Field(default_factory=SweepPruner)  # or the shorthand "median"/"hyperband"/"none"
    fixed: dict[str, Any] = Field(default_factory=dict)  # dotted path -> value for every trial (e.g. fewer epochs)
    params: dict[str, SweepParam] = Field(default_factory=dict)  # dotted config path -> search dimension
    hook: str | None = None  # "module:function" called as function(trial, cfg_dict) for conditional spaces

    @field_validator("hook")
    @classmethod
    def _hook_spec(cls, v: str | None) -> str | None:
        import re

        if v is not None and not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", v):
            raise ValueError(f"expected 'module:function', got '{v}'")
        return v

    @field_validator("pruner", mode="before")
    @classmethod
    def _pruner_shorthand(cls, v: Any) -> Any:
        return {"type": v} if isinstance(v, str) else v

    @model_validator(mode="after")
    def _has_space(self) -> SweepConfig:
        if not self.params and self.hook is None:
            raise ValueError("a sweep needs 'params' or a 'hook'")
        return self


class ExperimentConfig(_Section):
    """The whole recipe of one run: ``gnnrec run CONFIG.yaml``."""

    name: str = "experiment"  # run name; the run directory is <out_dir>/<name>-<timestamp>
    seed: int = 0  # seeds python, numpy and torch
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto = cuda when available
    threads: int | None = Field(None, ge=1)  # torch CPU threads; None = torch's default (all cores)
    # tuned: glibc malloc keeps freed blocks for reuse (no page faults per step; see
    # gnnrec.utils.malloc); system: the C library's defaults
    cpu_malloc: Literal["tuned", "system"] = "tuned"
    out_dir: str = "runs"  # parent of run directories
    data: DataConfig = Field(default_factory=DataConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    graph: GraphConfig = Field(default_factory=GraphConfig)
    model: ModelSpec = Field(default_factory=ModelSpec)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)  # optional item features
    compare: tuple[ModelSpec, ...] = ()  # models run on the same data and split; empty = `model` only
    sweep: SweepConfig | None = None  # Optuna search space (used by `gnnrec sweep`)
    rerank: RerankConfig = Field(default_factory=RerankConfig)  # test-time re-ranking (explore)
    replay: ReplayConfig = Field(default_factory=ReplayConfig)  # offline replay (gnnrec replay)
    drift: DriftConfig = Field(default_factory=DriftConfig)  # drift analysis and evaluation buckets

    @model_validator(mode="after")
    def _refit_split(self) -> ExperimentConfig:
        if self.train.refit and self.split.mode not in ("random", "given"):
            raise ValueError(
                f"train.refit needs split.mode 'random' or 'given' (validation pairs that can "
                f"rejoin training), got '{self.split.mode}'"
            )
        if self.train.refit and self.split.mode == "given" and self.split.valid_carve != "pairs":
            raise ValueError("train.refit with split.mode 'given' needs split.valid_carve 'pairs'")
        return self

    @model_validator(mode="after")
    def _monitor_is_evaluated(self) -> ExperimentConfig:
        name, _, k = self.train.monitor.partition("@")
        if name not in self.eval.metrics or not k.isdigit() or int(k) not in self.eval.ks:
            raise ValueError(
                f"train.monitor '{self.train.monitor}' must be one of the evaluated metrics "
                f"{list(self.eval.metrics)} at a K in eval.ks {list(self.eval.ks)}"
            )
        return self


def _format_validation_error(err: ValidationError, prefix: str = "") -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        if prefix:
            loc = f"{prefix}.{loc}" if loc else prefix
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def validate_section(cls: type[BaseModel], data: Mapping[str, Any], prefix: str) -> Any:
    """Validate ``data`` against ``cls``; errors name ``prefix.key``."""
    try:
        return cls.model_validate(dict(data))
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, prefix)) from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``a.b.c=value`` into a key path and a YAML-typed value."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects key.path=value, got '{text}'")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of the raw config dict with dotted overrides applied."""
    out: dict[str, Any] = _deepcopy(raw)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for i, part in enumerate(path[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = {}
                node[part] = nxt
            elif not isinstance(nxt, dict):
                raise ConfigError(f"--set {text}: '{'.'.join(path[: i + 1])}' is not a section")
            node = nxt
        node[path[-1]] = value
    return out


def _deepcopy(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _deepcopy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deepcopy(v) for v in d]
    return d


def config_from_dict(raw: Mapping[str, Any], overrides: Iterable[str] = ()) -> ExperimentConfig:
    """Validate a raw mapping (plus overrides) into an :class:`ExperimentConfig`."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"a config must be a mapping at the top level, got {type(raw).__name__}")
    data = apply_overrides(dict(raw), overrides)
    cfg = validate_section(ExperimentConfig, data, "")
    assert isinstance(cfg, ExperimentConfig)
    return cfg


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> ExperimentConfig:
    """Read a YAML experiment config and apply ``--set`` overrides."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        raw = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{p}:{where} invalid YAML: {getattr(err, 'problem', err)}") from None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{p}: a config must be a mapping at the top level, got {type(raw).__name__}")
    data = apply_overrides(dict(raw), overrides)  # --set errors are not the file's fault
    try:
        return config_from_dict(data)
    except ConfigError as err:
        raise ConfigError(f"{p}: {err}") from None


def dump_config(cfg: BaseModel) -> str:
    """Serialise a config to YAML (the resolved config written into each run dir)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
