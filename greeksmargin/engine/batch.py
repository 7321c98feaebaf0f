"""Batch margin over a Parquet dataset partitioned by account: in process, or on Dask.

A *dataset* is a Parquet file or a folder of Parquet files (hive ``key=value`` sub-folders allowed; their
keys become columns). Each file is a partition and holds whole accounts: an account's positions never
span two files (checked: an account found in two partitions is an error). :func:`write_dataset` writes
such a dataset from a positions table.

:func:`margin_dataset` runs :func:`greeksmargin.engine.margin.compute_margin` partition by partition, each file
split at account boundaries into pieces of at most ``partition_size`` positions (memory bound), with
``errors="collect"`` (a bad account gets a row with its error; the batch goes on). With
``scheduler=None`` it runs in this process; with ``"local"`` on a local Dask cluster (2 worker
processes on 127.0.0.1, started and closed here); with an address on that scheduler. Workers read their
own files (only paths, the market and the model travel), so the whole book never sits in one process.
The function run per partition is the same on every path and a margin result depends only on the
account's own positions, so the Dask and in-process tables are identical.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from greeksmargin import io
from greeksmargin.errors import ComputationError, InputError

__all__ = ["margin_dataset", "margin_partition", "write_dataset"]

#: default maximum number of positions per compute_margin call
PARTITION_SIZE = 200_000


def write_dataset(positions: pd.DataFrame, path: str | Path, *, accounts_per_file: int = 1000) -> list[Path]:
    """Write ``positions`` as a Parquet dataset partitioned by account.

    Parameters
    ----------
    positions : DataFrame
        Positions table (any schema with an ``account`` column).
    path : str or Path
        Folder (created); files ``part-00000.parquet``, ... each with ``accounts_per_file`` accounts (sorted).
    accounts_per_file : int
        Accounts per file.

    Returns
    -------
    list of Path
        The files written.
    """
    accounts = np.sort(pd.unique(positions["account"].astype(str)))
    code = pd.Index(accounts).get_indexer(positions["account"].astype(str))
    part = code // max(1, accounts_per_file)
    files = []
    order = np.argsort(part, kind="stable")
    sorted_pos = positions.iloc[order]
    sp = part[order]
    bounds = np.flatnonzero(np.r_[True, sp[1:] != sp[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:]):
        f = Path(path) / f"part-{int(sp[a]):05d}.parquet"
        files.append(io.write_table(sorted_pos.iloc[a:b], f))
    return files


def _read_partition(file: str | Path, keys: dict[str, str]) -> pd.DataFrame:
    df = io.read_table(file)
    for k, v in keys.items():
        if k not in df.columns:
            df[k] = v
    return df


def margin_partition(
    file: str | Path, keys: dict[str, str], market: Any, model: Any, partition_size: int = PARTITION_SIZE
) -> pd.DataFrame:
    """Accounts table of one partition file (the task run on a worker, or in process).

    Parameters
    ----------
    file : str or Path
        Parquet file of whole accounts.
    keys : dict of str -> str
        Hive partition keys of the file's folders (added as columns when absent).
    market : MarketSnapshot, dict or path
        Market snapshot.
    model : str, Path or Model
        The model.
    partition_size : int
        At most this many positions per :func:`~greeksmargin.engine.margin.compute_margin` call (whole accounts;
        a larger account is computed alone).

    Returns
    -------
    DataFrame
        ``MarginResult.accounts`` rows of the file's accounts, sorted by account.
    """
    from greeksmargin.engine.margin import compute_margin

    pos = _read_partition(file, keys)
    if "account" not in pos.columns:
        raise InputError("missing column (required: account)", file=str(file), column="account")
    if not len(pos):
        return pd.DataFrame()
    acc = pos["account"].astype(str).to_numpy()
    order = np.argsort(acc, kind="stable")
    pos = pos.iloc[order].reset_index(drop=True)
    acc = acc[order]
    starts = np.flatnonzero(np.r_[True, acc[1:] != acc[:-1]])
    ends = np.r_[starts[1:], len(acc)]
    out = []
    a = 0
    while a < len(starts):
        # whole accounts up to partition_size positions (at least one account)
        b = int(np.searchsorted(ends, starts[a] + partition_size, side="right"))
        b = max(b, a + 1)
        piece = pos.iloc[starts[a] : ends[b - 1]]
        out.append(compute_margin(piece, market, model, errors="collect").accounts)
        a = b
    return pd.concat(out, ignore_index=True)


def _combine(tables: list[pd.DataFrame]) -> pd.DataFrame:
    tables = [t for t in tables if len(t)]
    if not tables:
        return pd.DataFrame(columns=["account", "im", "mm"])
    df = pd.concat(tables, ignore_index=True)
    dup = df["account"].duplicated()
    if dup.any():
        raise InputError(
            f"account '{df['account'][dup].iloc[0]}' appears in two partitions: a dataset must be partitioned "
            "by account", column="account")
    return df.sort_values("account", kind="stable").reset_index(drop=True)


def margin_dataset(
    path: str | Path,
    market: Any,
    model: Any = "greeks-default",
    *,
    scheduler: str | None = None,
    partition_size: int = PARTITION_SIZE,
    client: Any = None,
) -> pd.DataFrame:
    """Margin of every account of a Parquet dataset partitioned by account.

    Parameters
    ----------
    path : str or Path
        Parquet file or dataset folder (see the module docstring).
    market : MarketSnapshot, dict or path
        Market snapshot (sent once to every worker).
    model : str, Path or Model
        The model.
    scheduler : {None, "local"} or str
        None: in this process. ``"local"``: a local Dask cluster (2 workers, 1 thread each, 127.0.0.1),
        closed at the end. Otherwise the address of a running Dask scheduler (``tcp://host:8786``).
    partition_size : int
        At most this many positions per :func:`~greeksmargin.engine.margin.compute_margin` call.
    client : distributed.Client, optional
        An existing client to use instead of ``scheduler`` (left open).

    Returns
    -------
    DataFrame
        One row per account (columns of ``MarginResult.accounts``; ``error`` set for an account that could
        not be computed), sorted by account: identical whichever the scheduler.

    Raises
    ------
    InputError
        No such dataset, an account in two partitions, or an unreachable scheduler.
    """
    from greeksmargin.book.market import MarketSnapshot, load_market
    from greeksmargin.engine.models import load_model

    mk = market if isinstance(market, MarketSnapshot) else load_market(market)
    m = load_model(model)
    parts = io.parquet_partitions(path)
    if client is None and scheduler is None:
        return _combine([margin_partition(f, k, mk, m, partition_size) for f, k in parts])
    own = client is None
    if own:
        client = _client(None if scheduler == "local" else scheduler)
    try:
        # unique keys (hash=False): a second run on the same client must not share (and release) these
        mk_f = client.scatter(mk, broadcast=True, hash=False)
        m_f = client.scatter(m, broadcast=True, hash=False)
        futures = [client.submit(margin_partition, str(f), k, mk_f, m_f, partition_size, pure=False) for f, k in parts]
        try:
            tables = client.gather(futures)
        except Exception as exc:  # a worker-side failure: re-raise ours as is, wrap the others
            if isinstance(exc, (InputError, ComputationError)):
                raise
            raise ComputationError(f"batch margin failed on the Dask cluster: {exc}") from exc
    finally:
        if own:
            _close(client)
    return _combine(tables)


def _client(address: str | None) -> Any:
    try:
        from greeksmargin.engine.distributed import get_client
    except ImportError:  # pragma: no cover - distributed.py ships with the package
        pass
    else:
        return get_client(address)
    from distributed import Client, LocalCluster  # pragma: no cover

    if address:  # pragma: no cover
        return Client(address)
    cluster = LocalCluster(  # pragma: no cover
        n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    )
    client: Any = Client(cluster)  # pragma: no cover - Any: it gets our own _gm_cluster attribute
    client._gm_cluster = cluster  # pragma: no cover
    return client  # pragma: no cover


def _close(client: Any) -> None:
    """Close a client started here (a client owning its local cluster shuts it down too)."""
    client.close()
    cluster = getattr(client, "_gm_cluster", None)
    if cluster is not None:  # pragma: no cover
        cluster.close()
