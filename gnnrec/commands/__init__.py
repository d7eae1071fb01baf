"""Sub-commands of ``gnnrec`` beyond the core ``run`` / ``data`` / ``datasets`` / ``models``.

Each module here defines ``register(sub)``, which adds its parser(s) to the top-level
``argparse`` sub-parser collection and sets ``func`` to a handler ``(args) -> int``.
:func:`gnnrec.cli.build_parser` discovers the modules, so features (sweeps, benchmarks,
drift, interests, explanations, ...) plug into the CLI without editing ``cli.py``.
Handlers import their heavy dependencies lazily so ``gnnrec --help`` stays fast, and raise
:class:`gnnrec.errors.GnnrecError` for bad input (one ``error:`` line, exit status 2).
"""
