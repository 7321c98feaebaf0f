"""Reading and writing files: the only module of greeksmargin that touches the disk.

Readers return plain Python / pandas objects; validation of their content happens in the module that
owns the schema (``positions``, ``market``, ``models``, ...), which receives the file name so that its
errors can name it.
"""

from __future__ import annotations

import csv
import io as _io
import json
import os
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from greeksmargin.errors import InputError, expect_path

PathLike = str | Path

TABLE_SUFFIXES = {".csv", ".parquet", ".pq"}


def _file(path: PathLike, arg: str = "path") -> Path:
    """``path`` as a Path to an existing file (InputError: not found, a folder, not a path)."""
    p = Path(expect_path(path, arg))
    if not p.exists():
        raise InputError("file not found", file=str(p))
    if p.is_dir():
        raise InputError("is a folder, not a file", file=str(p))
    return p


def decode_text(data: bytes, file: str) -> str:
    """Text of a file's bytes: UTF-8 (with or without BOM) or UTF-16 with a BOM; otherwise a clear error.

    Parameters
    ----------
    data : bytes
        The file's content.
    file : str
        Its name for messages.

    Raises
    ------
    InputError
        Bytes that are not text in these encodings (binary files, Latin-1 / cp1252 exports, ...); the
        message gives the offset of the first bad byte.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise InputError(f"not valid UTF-16 text (byte offset {exc.start})", file=file) from None
    if len(data) >= 4 and data[1:2] == b"\x00" and data[3:4] == b"\x00" and data[0:1] != b"\x00":
        try:  # UTF-16-LE without a BOM (ASCII text with every other byte zero)
            return data.decode("utf-16-le")
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} (save the file as UTF-8, or "
            f"UTF-16 with a BOM; a binary file is not a table)",
            file=file,
        ) from None


def read_file_text(path: PathLike) -> str:
    """The text of a file (UTF-8, UTF-8 with BOM or UTF-16 with BOM; see :func:`decode_text`)."""
    p = _file(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=str(p)) from None
    return decode_text(data, str(p))


def _check_header(text: str, file: str) -> None:
    """Refuse a CSV header naming the same column twice (pandas would rename the second one silently)."""
    first = next(csv.reader(_io.StringIO(text.split("\n", 1)[0])), [])
    seen: dict[str, int] = {}
    for i, c in enumerate(first):
        c = c.strip()
        if c and c in seen:
            raise InputError(f"duplicate column '{c}' (columns {seen[c] + 1} and {i + 1} of the header)",
                             file=file, column=c)
        seen[c] = i


def read_table(path: PathLike, *, strict_fields: bool = False, **kwargs: Any) -> pd.DataFrame:
    """Read a CSV or Parquet table.

    Parameters
    ----------
    path : str or Path
        A ``.csv`` or ``.parquet`` file, or a directory holding a partitioned Parquet dataset.
    strict_fields : bool
        CSV only: refuse a row with fewer or more fields than the header (pandas would fill the missing
        ones with NaN, or shift the columns), naming the row and the column (:func:`check_csv_fields`).
    **kwargs
        Passed to :func:`pandas.read_csv` (CSV only).

    Notes
    -----
    A CSV file with classic Mac (CR-only) line endings is read as if its lines ended in LF.

    Returns
    -------
    pandas.DataFrame
        The table as read; columns are not validated here.
    """
    return _read_table(path, "raise" if strict_fields else "ignore", kwargs)[0]


def read_table_field_faults(path: PathLike, **kwargs: Any) -> tuple[pd.DataFrame, list[CsvFieldFault]]:
    """:func:`read_table` with ``strict_fields``, except that a CSV row of the wrong field count is set aside.

    Parameters
    ----------
    path : str or Path
        As for :func:`read_table`.
    **kwargs
        Passed to :func:`pandas.read_csv` (CSV only).

    Returns
    -------
    table : pandas.DataFrame
        The other rows. When rows were set aside its index is the 0-based data row of each row kept (the
        numbering of the whole file, as in error messages); otherwise the table is exactly what
        :func:`read_table` returns.
    faults : list of CsvFieldFault
        The rows set aside, in file order (always empty for Parquet).

    Raises
    ------
    InputError
        As :func:`read_table`; also when pandas does not read as many rows as the CSV reader kept.
    """
    return _read_table(path, "collect", kwargs)


def _read_table(path: PathLike, fields: str, kwargs: dict[str, Any]) -> tuple[pd.DataFrame, list[CsvFieldFault]]:
    """The reader of :func:`read_table` (``fields``: ignore / raise / collect rows of the wrong field count)."""
    p = Path(expect_path(path, "path"))
    if not p.exists():
        raise InputError("file not found", file=str(p))
    suffix = p.suffix.lower()
    if p.is_dir() and suffix == ".csv":
        raise InputError("is a folder, not a CSV file", file=str(p))
    if not p.is_dir() and suffix not in TABLE_SUFFIXES and suffix != "":
        raise InputError(f"unsupported table format '{p.suffix}' (use .csv or .parquet)", file=str(p))
    try:
        if p.is_dir() or suffix in {".parquet", ".pq"}:
            return pd.read_parquet(p), []
        text = read_file_text(p)
        if not text.strip():
            raise InputError("empty file (expected a header line and rows)", file=str(p))
        text = unify_line_endings(text)
        _check_header(text, str(p))
        if fields == "raise":
            check_csv_fields(text, str(p))
        elif fields == "collect":
            text, rows, faults = split_csv_field_faults(text, str(p))
            if faults:
                df = pd.read_csv(_io.StringIO(text), **kwargs)
                if len(df) != len(rows):  # pandas and the csv module split the rows differently: refuse
                    raise faults[0].error
                df.index = pd.Index(rows)
                return df, faults
        return pd.read_csv(_io.StringIO(text), **kwargs), []
    except InputError:
        raise
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot read table: {msg}", file=str(p)) from exc


def _atomic_write(p: Path, data: bytes) -> Path:
    """Write ``data`` to ``p`` atomically: a temporary file in the same folder, fsync, ``os.replace``.

    A reader never sees a half-written file; a failed or interrupted write (an exception, Ctrl-C) leaves
    the previous file in place and no temporary file behind. The new file gets the mode of the file it
    replaces, or ``0o666`` less the process umask (as ``open()`` would), never ``mkstemp``'s private 0600.
    A symbolic link is followed (its target is replaced, the link kept); a special file (FIFO, device,
    socket) is refused.

    Raises
    ------
    InputError
        ``p`` is a folder or a special file, its folder cannot be created, or the file cannot be written
        (permissions, disk).
    """
    p = resolve_output(p)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot write: cannot create the folder {p.parent} ({exc.strerror or exc})",
                         file=str(p)) from None
    mode = _new_file_mode(p)
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, p)
        tmp = None
        _fsync_folder(p.parent)
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror or exc}", file=str(p)) from None
    finally:  # also on KeyboardInterrupt and any other exception: no temporary file is left behind
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return p


def resolve_output(path: PathLike) -> Path:
    """The file an output ``path`` writes to: symbolic links followed; folders and special files refused.

    Parameters
    ----------
    path : str or Path
        Where the user asked to write.

    Returns
    -------
    Path
        ``path`` itself, or the final target of a symbolic link.

    Raises
    ------
    InputError
        ``path`` (or its target) is a folder, a FIFO, a device or a socket.
    """
    p = Path(expect_path(path, "path"))
    if p.is_symlink():
        p = Path(os.path.realpath(p))
    if p.is_dir():
        raise InputError("cannot write: is a folder (give a file name)", file=str(p))
    if p.exists() and not p.is_file():
        raise InputError("cannot write: a special file (FIFO, device or socket), not a regular file",
                         file=str(p))
    return p


def current_umask() -> int:
    """The process umask (read without changing it, via ``/proc`` where available)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)  # no /proc: the classic set-and-restore
    os.umask(old)
    return old


def _new_file_mode(p: Path) -> int:
    """Mode of an output file: that of the file it replaces, else ``0o666 & ~umask``."""
    try:
        return p.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~current_umask()


def _fsync_folder(folder: Path) -> None:
    """Flush a folder to disk (fsync) so that a rename in it survives a crash (no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_table(df: pd.DataFrame, path: PathLike, *, index: bool = False) -> Path:
    """Write a DataFrame as CSV or Parquet, chosen by the file suffix; returns the path."""
    p = Path(path)
    buf = _io.BytesIO()
    if p.suffix.lower() in {".parquet", ".pq"}:
        df.to_parquet(buf, index=index)
        return _atomic_write(p, buf.getvalue())
    return _atomic_write(p, df.to_csv(index=index).encode())


def read_json(path: PathLike) -> Any:
    """Read a JSON file; a parse error names the file, line and column."""
    p = _file(path)
    text = read_file_text(p)
    if not text.strip():
        raise InputError("empty file (expected a JSON document)", file=str(p))
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON at line {exc.lineno}, character {exc.colno}: {exc.msg}", file=str(p)) from exc
    except _DuplicateKey as exc:
        raise InputError(f"duplicate key {exc.args[0]!r} in a JSON object (the first value would be lost)",
                         file=str(p)) from None


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def write_json(obj: Any, path: PathLike, *, indent: int = 1) -> Path:
    """Write ``obj`` as JSON (NaN is refused: a figure is either a number or absent)."""
    text = json.dumps(obj, indent=indent, allow_nan=False, default=_json_default) + "\n"
    return _atomic_write(Path(path), text.encode())


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
    p = _file(path)
    try:
        return tomllib.loads(read_file_text(p))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"invalid TOML: {exc}", file=str(p)) from exc


def write_toml(obj: dict[str, Any], path: PathLike, *, header: str = "") -> Path:
    """Write a dict as TOML, with an optional comment header (lines prefixed by ``#``)."""
    import tomli_w

    head = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return _atomic_write(Path(path), (head + tomli_w.dumps(obj)).encode())


def read_text(path: PathLike) -> str:
    """Read a text file."""
    return read_file_text(path)


def write_text(text: str, path: PathLike) -> Path:
    """Write a text file (HTML reports, Markdown), creating parent folders."""
    return _atomic_write(Path(path), text.encode())


def write_bytes(data: bytes, path: PathLike) -> Path:
    """Write a binary file (PNG figures), creating parent folders."""
    return _atomic_write(Path(path), data)


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


def read_crif_table(path: PathLike) -> pd.DataFrame:
    """Read the raw table of a CRIF file as strings (``.csv``, ``.tsv``/``.txt``, ``.parquet``).

    Parameters
    ----------
    path : str or Path
        ``.csv`` (comma), ``.tsv`` / ``.txt`` (tab, the CRIF spec's own format; a comma-separated ``.txt`` is
        detected), or ``.parquet``. Text files are read as strings so that codes keep their spelling.

    Returns
    -------
    pandas.DataFrame
        The file's columns as read; :func:`greeksmargin.risk.crif.read_crif` normalises them.
    """
    p = Path(path)
    if not p.exists():
        raise InputError("file not found", file=str(p))
    suffix = p.suffix.lower()
    if p.is_dir() or suffix in {".parquet", ".pq"}:
        return read_table(p)
    if suffix in {".csv", ".tsv", ".txt"}:
        try:
            with open(p, encoding="utf-8-sig") as fh:
                head = fh.readline()
        except UnicodeDecodeError as exc:
            raise InputError(f"not a UTF-8 text file: {exc}", file=str(p)) from exc
        sep = "\t" if ("\t" in head or (suffix == ".tsv")) else ","
        try:
            return pd.read_csv(p, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        except (ValueError, OSError, pd.errors.ParserError) as exc:
            raise InputError(f"cannot read CRIF: {exc}", file=str(p)) from exc
    raise InputError(f"unsupported CRIF format '{p.suffix}' (use .csv, .tsv, .txt or .parquet)", file=str(p))


# ------------------------------------------------------------------------------------ output formats
#: output format chosen by the extension of ``--out``
FORMAT_BY_SUFFIX = {".csv": "csv", ".json": "json", ".html": "html", ".htm": "html", ".parquet": "parquet",
                    ".pq": "parquet", ".txt": "table", ".text": "table"}


def output_format(out: PathLike | None, given: str | None, allowed: tuple[str, ...], default: str = "table") -> str:
    """The output format of a command: ``--format``, or the extension of ``--out``; a conflict is an error.

    Parameters
    ----------
    out : str, Path or None
        The ``--out`` file.
    given : str or None
        The ``--format`` given on the command line (None: not given).
    allowed : tuple of str
        Formats the command writes.
    default : str
        Format when neither is given (or the extension is not a known one).

    Returns
    -------
    str
        One of ``allowed``.

    Raises
    ------
    InputError
        ``--format`` disagrees with the extension of ``--out`` (``--out x.parquet --format csv``), or the
        extension names a format the command does not write.
    """
    by_ext = FORMAT_BY_SUFFIX.get(Path(out).suffix.lower()) if out is not None else None
    if by_ext is not None and by_ext not in allowed:
        raise InputError(f"--out {out}: this command does not write {by_ext} (formats: {', '.join(allowed)})",
                         file=str(out), column="--out")
    if given is not None and by_ext is not None and given != by_ext:
        raise InputError(f"--format {given} conflicts with the extension of --out {out} ({by_ext}); give one "
                         "or make them agree", file=str(out), column="--format")
    fmt = given or by_ext or default
    if fmt not in allowed:
        raise InputError(f"format {fmt!r} is not written by this command (formats: {', '.join(allowed)})",
                         column="--format")
    return fmt


# ------------------------------------------------------------------------------------ shipped data
#: folders shipped with the package: in a source checkout they sit at the repository's top level; in an
#: installed wheel the build maps them to ``greeksmargin/_shipped/`` (``[tool.setuptools.package-dir]`` in
#: ``pyproject.toml``)
SHIPPED_FOLDERS = ("models", "validation/cases")


def shipped_folder(kind: str) -> Path:
    """The folder of shipped data (``"models"`` or ``"validation/cases"``), from any working folder.

    Parameters
    ----------
    kind : {"models", "validation/cases"}
        Which folder.

    Returns
    -------
    Path
        ``$GREEKSMARGIN_MODELS`` for ``"models"`` when set; else ``<repo>/<kind>`` when the package runs from
        a source checkout (editable install, ``PYTHONPATH``); else ``<site-packages>/greeksmargin/_shipped/<kind>``
        (a wheel install).

    Raises
    ------
    InputError
        ``kind`` is unknown, or neither location holds the folder (a broken install).
    """
    if kind not in SHIPPED_FOLDERS:
        raise InputError(f"unknown shipped folder {kind!r} (known: {', '.join(SHIPPED_FOLDERS)})", column="kind")
    if kind == "models" and os.environ.get("GREEKSMARGIN_MODELS"):
        return Path(os.environ["GREEKSMARGIN_MODELS"])
    pkg = Path(__file__).resolve().parent
    source = pkg.parent / kind
    if source.is_dir() and (pkg.parent / "pyproject.toml").is_file():
        return source
    installed = pkg / "_shipped" / kind
    if installed.is_dir():
        return installed
    raise InputError(f"the shipped {kind} folder is missing (looked in {source} and {installed}): reinstall "
                     "greeksmargin", file=str(installed))


def find_model_file(name: str, cwd: PathLike | None = None) -> Path | None:
    """A model named ``name`` in the working folder: ``./NAME.toml`` then ``./models/NAME.toml`` (None: neither).

    Parameters
    ----------
    name : str
        A model name (no folder, no suffix).
    cwd : str or Path, optional
        The working folder (default: the process's).

    Returns
    -------
    Path or None
        The first of the two files that exists.
    """
    here = Path(cwd) if cwd is not None else Path.cwd()
    for cand in (here / f"{name}.toml", here / "models" / f"{name}.toml"):
        if cand.is_file():
            return cand
    return None


def shipped_simm_file(version: str) -> str:
    """A SIMM version (``"2.5"``, ``"simm-2.6"``) as the path of its shipped model file; anything else unchanged.

    ``methodologies.simm`` resolves version names against the repository's ``models/``; passing the file
    found by :func:`shipped_folder` lets a wheel install (no repository) load them too.
    """
    text = str(version)
    if text.endswith(".toml") or Path(text).exists():
        return text
    name = text if text.startswith("simm-") else f"simm-{text}"
    cand = shipped_folder("models") / f"{name}.toml"
    return str(cand) if cand.is_file() else text


# ============================================================================ strict CSV rows
def unify_line_endings(text: str) -> str:
    """A CSV text with CR-only line endings (no LF anywhere) with LF instead; any other text unchanged.

    CR LF and LF files are read by pandas as they are; a CR-only file would otherwise be one long line.
    """
    if "\r" in text and "\n" not in text:
        return text.replace("\r", "\n")
    return text


def check_csv_fields(text: str, file: str) -> None:
    """Refuse a CSV row whose number of fields differs from the header's.

    Blank lines are skipped (as pandas does). Quoted fields may hold commas and line breaks.

    Raises
    ------
    InputError
        Naming the 0-based data row (as the table readers do), the column (the first missing one for a
        short row, the last of the header for a long one) and the line of the file.
    """
    faults = _scan_fields(list(_io.StringIO(text, newline="")), file, first_only=True)[2]
    if faults:
        raise faults[0].error


@dataclass(frozen=True)
class CsvFieldFault:
    """A CSV row whose number of fields differs from the header's (see :func:`check_csv_fields`).

    Attributes
    ----------
    row : int
        0-based data row (blank lines not counted), as the table readers and their errors number rows.
    line : int
        1-based line of the file where the row ends.
    expected, found : int
        Number of fields of the header and of the row.
    header, fields : tuple of str
        The header's names and the row's fields, as split by the CSV reader (not stripped).
    error : InputError
        The error :func:`check_csv_fields` raises for this row (file, row, column, CSV line).
    """

    row: int
    line: int
    expected: int
    found: int
    header: tuple[str, ...]
    fields: tuple[str, ...]
    error: InputError


def _scan_fields(lines: list[str], file: str, first_only: bool = False
                 ) -> tuple[int, list[tuple[int, int, int]], list[CsvFieldFault]]:
    """Field counts of the CSV ``lines`` (physical lines, ends kept).

    Returns the number of lines of the header, ``(row, first_line, last_line)`` (1-based, inclusive) of each
    data row of the right field count, and a :class:`CsvFieldFault` per other data row (only the first when
    ``first_only``).
    """
    reader = csv.reader(iter(lines))
    header = next(reader, [])
    n = len(header)
    header_lines = reader.line_num
    kept: list[tuple[int, int, int]] = []
    faults: list[CsvFieldFault] = []
    row = 0
    first = header_lines + 1
    for rec in reader:
        if rec:
            k = len(rec)
            if k == n:
                kept.append((row, first, reader.line_num))
            else:
                if k < n:
                    col = header[k].strip()
                    msg = (f"too few fields: {k} for the {n} columns of the header (no value for '{col}' and "
                           f"after; a row is never completed with defaults)")
                else:
                    col = header[-1].strip()
                    msg = (f"too many fields: {k} for the {n} columns of the header (values after the last column "
                           f"'{col}': an unquoted comma inside a value?)")
                err = InputError(f"{msg} (CSV line {reader.line_num})", file=file, row=row, column=col)
                faults.append(CsvFieldFault(row, reader.line_num, n, k, tuple(header), tuple(rec), err))
                if first_only:
                    break
            row += 1
        first = reader.line_num + 1
    return header_lines, kept, faults


def split_csv_field_faults(text: str, file: str) -> tuple[str, list[int], list[CsvFieldFault]]:
    """Set aside the CSV rows whose number of fields differs from the header's, instead of refusing the file.

    Parameters
    ----------
    text : str
        The CSV text (header line first).
    file : str
        Its name for messages.

    Returns
    -------
    text : str
        The header and the other rows, each as it was (``text`` itself when no row is set aside).
    rows : list of int
        The 0-based data row (in the whole file, blank lines not counted) of each row kept, in order.
    faults : list of CsvFieldFault
        The rows set aside, in file order.
    """
    lines = list(_io.StringIO(text, newline=""))
    header_lines, kept, faults = _scan_fields(lines, file)
    rows = [r for r, _, _ in kept]
    if not faults:
        return text, rows, faults
    body = [ln for _, a, b in kept for ln in lines[a - 1:b]]
    if body and not body[-1].endswith(("\n", "\r")):
        body[-1] += "\n"
    head = lines[:header_lines]
    if head and not head[-1].endswith(("\n", "\r")):
        head[-1] += "\n"
    return "".join(head + body), rows, faults
