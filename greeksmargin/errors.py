"""Exception types of greeksmargin.

Every error raised at the boundary names what is at fault: the file, the row and the column of a
table, the key of a model file, the argument of a function. Messages are stable text; tests match them.
"""

from __future__ import annotations

import os


class GreeksMarginError(Exception):
    """Base class of every error raised by greeksmargin."""


class InputError(GreeksMarginError, ValueError):
    """Bad input table or file: a missing column, a wrong type, a value out of range.

    Parameters
    ----------
    message : str
        What is wrong, in words.
    file : str, optional
        The file (or ``"<DataFrame>"`` for in-memory input) at fault.
    row : int or object, optional
        The row label (0-based data row for files, index label for DataFrames).
    column : str, optional
        The column at fault.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: object | None = None,
        column: str | None = None,
    ) -> None:
        self.file = file
        self.row = row
        self.column = column
        self.reason = message
        where = []
        if file is not None:
            where.append(f"file {file}")
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class MarketDataError(InputError):
    """The market snapshot lacks something a position needs, or holds a value out of range."""


class ModelError(GreeksMarginError, ValueError):
    """A model (rule set) file is malformed: unknown key, wrong type, missing parameter.

    Parameters
    ----------
    message : str
        What is wrong.
    file : str, optional
        The model file.
    key : str, optional
        The dotted key at fault, e.g. ``"scan.price_shock"``.
    """

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        self.file = file
        self.key = key
        self.reason = message
        where = []
        if file is not None:
            where.append(f"model file {file}")
        if key is not None:
            where.append(f"key '{key}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ComputationError(GreeksMarginError, ArithmeticError):
    """A figure could not be computed (no implied vol, no root in range, ...); the reason is the message."""


class CaseFormatError(InputError):
    """A validation case file does not follow its published format."""


class ArgumentTypeError(GreeksMarginError, TypeError):
    """A public function was given an argument of the wrong type (a DataFrame for a path, None, ...).

    Parameters
    ----------
    argument : str
        The argument's name.
    expected : str
        What it accepts, in words.
    value : object
        What it was given.
    """

    def __init__(self, argument: str, expected: str, value: object) -> None:
        self.argument = argument
        self.reason = f"argument '{argument}' must be {expected}, got {type(value).__name__}"
        super().__init__(self.reason)


def expect_path(value: object, argument: str) -> str | os.PathLike[str]:
    """``value`` if it is a file path (str or os.PathLike of str); :class:`ArgumentTypeError` otherwise."""
    if isinstance(value, str):
        if not value.strip():
            raise ArgumentTypeError(argument, "a non-empty file path", value)
        return value
    if isinstance(value, os.PathLike) and isinstance(os.fspath(value), str):
        return value
    raise ArgumentTypeError(argument, "a file path (str or pathlib.Path)", value)


def expect_type(value: object, argument: str, types: type | tuple[type, ...], expected: str) -> None:
    """Raise :class:`ArgumentTypeError` naming ``argument`` unless ``value`` is an instance of ``types``."""
    if not isinstance(value, types) or isinstance(value, bool) and bool not in (
            types if isinstance(types, tuple) else (types,)):
        raise ArgumentTypeError(argument, expected, value)
