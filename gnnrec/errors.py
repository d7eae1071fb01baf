"""User-facing errors.

Anything raised as a :class:`GnnrecError` is a problem with the user's input (a config, a
log file, a command-line flag). The CLI prints it as one ``error: ...`` line and exits with
status 2; every other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import Any


class GnnrecError(Exception):
    """Base class of errors caused by bad input or configuration."""


class ConfigError(GnnrecError):
    """An experiment config is invalid; the message names the dotted key path."""


class DataError(GnnrecError):
    """A behaviour log is invalid.

    The message names the file, the 1-based data row (header excluded), the column and
    the offending value, so a user can open the file and find it.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
        value: Any = None,
        has_value: bool = False,
    ) -> None:
        self.file = file
        self.row = row
        self.column = column
        self.value = value
        self.reason = message
        where = []
        if file is not None:
            where.append(str(file))
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        text = ", ".join(where)
        full = f"{text}: {message}" if text else message
        if has_value or value is not None:
            full += f" (got {value!r})"
        super().__init__(full)
