"""Optuna hyper-parameter sweeps over experiment configs (``gnnrec sweep CONFIG.yaml``).

The search space is the ``sweep:`` block of an experiment YAML (see
:class:`gnnrec.config.SweepConfig`): dotted config paths mapped to float / int /
categorical dimensions, a ``fixed:`` map of dotted overrides applied to every trial, and an
optional ``hook: module:function`` for conditional spaces. Each trial is one ordinary run
(:func:`gnnrec.runner.run`) in ``<sweep dir>/trial-NNNN``; the study lives in an Optuna RDB
storage (SQLite in the sweep directory by default, or PostgreSQL shared between machines).

Modules:
    space: parsing and up-front validation of the search space, trial → config dict.
    pruning: the trainer callback that reports the validation metric to Optuna.
    study: storage, study creation / resume, recovery of trials left by dead workers.
    worker: the objective (data prepared once per process), worker loops and processes.
    outputs: trials.csv, best_config.yaml, plots, report.html, TensorBoard hparams.

Example:
    >>> from gnnrec.config import load_config                       # doctest: +SKIP
    >>> from gnnrec.sweep.space import SearchSpace
    >>> space = SearchSpace.from_config(load_config("experiments/quickstart.yaml"))
    >>> space.metric, list(space.params)
    ('ndcg@20', ['train.lr', 'model.params.dim', 'model.params.reg'])

Nothing here imports Optuna or torch at import time; the heavy imports happen inside the
functions that need them.
"""
