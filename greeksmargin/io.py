"""Reading and writing files: the only module of greeksmargin that touches the disk.

Readers return plain Python / pandas objects; validation of their content happens in the module that
owns the schema (``positions``, ``market``, ``models``, ...), which receives the file name so that its
errors can name it.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import InputError

PathLike = str | Path

TABLE_SUFFIXES = {".csv", ".parquet", ".pq"}


def read_table(path: PathLike, **kwargs: Any) -> pd.DataFrame:
    """Read a CSV or Parquet table.

    Parameters
    ----------
    path : str or Path
        A ``.csv`` or ``.parquet`` file, or a directory holding a partitioned Parquet dataset.
    **kwargs
        Passed to :func:`pandas.read_csv` (CSV only).

    Returns
    -------
    pandas.DataFrame
        The table as read; columns are not validated here.
    """
    p = Path(path)
    if not p.exists():
        raise InputError("file not found", file=str(p))
    try:
        if p.is_dir() or p.suffix.lower() in {".parquet", ".pq"}:
            return pd.read_parquet(p)
        if p.suffix.lower() == ".csv" or p.suffix == "":
            return pd.read_csv(p, **kwargs)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise InputError(f"cannot read table: {exc}", file=str(p)) from exc
    raise InputError(f"unsupported table format '{p.suffix}' (use .csv or .parquet)", file=str(p))


def write_table(df: pd.DataFrame, path: PathLike, *, index: bool = False) -> Path:
    """Write a DataFrame as CSV or Parquet, chosen by the file suffix; returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix.lower() in {".parquet", ".pq"}:
        df.to_parquet(p, index=index)
    else:
        df.to_csv(p, index=index)
    return p


def read_json(path: PathLike) -> Any:
    """Read a JSON file; a parse error names the file, line and column."""
    p = Path(path)
    if not p.exists():
        raise InputError("file not found", file=str(p))
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON at line {exc.lineno}, character {exc.colno}: {exc.msg}", file=str(p)) from exc


def write_json(obj: Any, path: PathLike, *, indent: int = 1) -> Path:
    """Write ``obj`` as JSON (NaN is refused: a figure is either a number or absent)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(obj, indent=indent, allow_nan=False, default=_json_default) + "\n")
    return p


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (pd.Timestamp,)):
        return o.isoformat()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_toml(path: PathLike) -> dict[str, Any]:
    """Read a TOML file; a parse error names the file."""
    p = Path(path)
    if not p.exists():
        raise InputError("file not found", file=str(p))
    try:
        return tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"invalid TOML: {exc}", file=str(p)) from exc


def write_toml(obj: dict[str, Any], path: PathLike, *, header: str = "") -> Path:
    """Write a dict as TOML, with an optional comment header (lines prefixed by ``#``)."""
    import tomli_w

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    head = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    p.write_text(head + tomli_w.dumps(obj))
    return p


def read_text(path: PathLike) -> str:
    """Read a text file."""
    p = Path(path)
    if not p.exists():
        raise InputError("file not found", file=str(p))
    return p.read_text()


def write_text(text: str, path: PathLike) -> Path:
    """Write a text file (HTML reports, Markdown), creating parent folders."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def write_bytes(data: bytes, path: PathLike) -> Path:
    """Write a binary file (PNG figures), creating parent folders."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def list_files(folder: PathLike, pattern: str) -> list[Path]:
    """Sorted files in ``folder`` matching a glob ``pattern``."""
    return sorted(Path(folder).glob(pattern))


def parquet_partitions(path: PathLike) -> list[tuple[Path, dict[str, str]]]:
    """Parquet files of a dataset folder (recursively, sorted) with their hive ``key=value`` folder keys.

    Parameters
    ----------
    path : str or Path
        A Parquet file, or a folder of ``*.parquet`` files, possibly in ``key=value`` sub-folders.

    Returns
    -------
    list of (Path, dict of str -> str)
        Each file and the partition keys of the folders between ``path`` and it (``{}`` when none).

    Raises
    ------
    InputError
        ``path`` does not exist or holds no Parquet file.
    """
    p = Path(path)
    if p.is_file():
        return [(p, {})]
    if not p.is_dir():
        raise InputError("no such file or folder", file=str(p))
    files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in (".parquet", ".pq"))
    if not files:
        raise InputError("no Parquet file in the folder", file=str(p))
    out = []
    for f in files:
        keys = dict(part.split("=", 1) for part in f.relative_to(p).parts[:-1] if "=" in part)
        out.append((f, keys))
    return out


CRIF_SUFFIXES = {".csv", ".tsv", ".txt", ".parquet", ".pq"}


def read_crif(path: PathLike, fx_rates: dict[str, float] | None = None) -> pd.DataFrame:
    """Read a CRIF file (ISDA Common Risk Interchange Format) and normalise it.

    Parameters
    ----------
    path : str or Path
        ``.csv`` (comma), ``.tsv`` / ``.txt`` (tab, the CRIF spec's own format; a comma-separated ``.txt`` is
        detected), or ``.parquet``. Text files are read as strings so that codes keep their spelling.
    fx_rates : dict, optional
        USD per unit of currency for rows given as ``Amount`` + ``AmountCurrency`` without ``AmountUSD``.

    Returns
    -------
    pandas.DataFrame
        See :func:`greeksmargin.rules.crif.normalize_crif`; errors name this file, the 0-based data row and
        the column.
    """
    from .rules.crif import normalize_crif

    p = Path(path)
    if not p.exists():
        raise InputError("file not found", file=str(p))
    suffix = p.suffix.lower()
    if p.is_dir() or suffix in {".parquet", ".pq"}:
        df = read_table(p)
    elif suffix in {".csv", ".tsv", ".txt"}:
        try:
            with open(p, encoding="utf-8-sig") as fh:
                head = fh.readline()
        except UnicodeDecodeError as exc:
            raise InputError(f"not a UTF-8 text file: {exc}", file=str(p)) from exc
        sep = "\t" if ("\t" in head or (suffix == ".tsv")) else ","
        try:
            df = pd.read_csv(p, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        except (ValueError, OSError, pd.errors.ParserError) as exc:
            raise InputError(f"cannot read CRIF: {exc}", file=str(p)) from exc
    else:
        raise InputError(f"unsupported CRIF format '{p.suffix}' (use .csv, .tsv, .txt or .parquet)", file=str(p))
    return normalize_crif(df, fx_rates, file=str(p))
