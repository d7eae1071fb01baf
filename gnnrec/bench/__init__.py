"""Benchmark suites: models × datasets × seeds, run, aggregated and reported.

``gnnrec bench SUITE.yaml --out DIR [--resume]`` (:mod:`gnnrec.commands.bench`) is the
command line; the pieces are:

* :mod:`gnnrec.bench.suite`: the suite schema (pydantic, unknown keys are errors naming
  their key path) and its expansion into :class:`Cell` s with resolved experiment configs;
* :mod:`gnnrec.bench.execute`: running cells in-process, one prepared data set per data
  group, finished cells skipped on resume, per-cell peak memory;
* :mod:`gnnrec.bench.aggregate`: mean ± std over seeds, timings, reference ratios;
* :mod:`gnnrec.bench.report`: Markdown / CSV / LaTeX tables, plots, committed snapshots.
"""

from gnnrec.bench.aggregate import aggregate, cell_records, find_reference, mean_std
from gnnrec.bench.execute import SuiteRun, read_cell, run_suite
from gnnrec.bench.suite import Cell, Suite, SuiteConfig, load_suite, parse_suite

__all__ = [
    "Cell",
    "Suite",
    "SuiteConfig",
    "SuiteRun",
    "aggregate",
    "cell_records",
    "find_reference",
    "load_suite",
    "mean_std",
    "parse_suite",
    "read_cell",
    "run_suite",
]
