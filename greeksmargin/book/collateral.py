"""Collateral: balances per account and asset, prices, IM / MM haircuts, value in the margin currency.

Table format (CSV, Parquet or DataFrame), one row per (account, asset) balance
-------------------------------------------------------------------------------
===========  ====================================================================================
column       meaning
===========  ====================================================================================
account      account name (str), required
asset        asset code (``USD``, ``USDC``, ``USDT``, ``BTC``, ``ETH``, ...), required
amount       signed units of the asset (finite; a negative amount is a debt), required
price        USD price of one unit (> 0); optional, default from the market snapshot
             (:meth:`~greeksmargin.book.market.MarketSnapshot.fx_to_usd`: ``USD`` 1, a coin its spot)
im_haircut   fraction in [0, 1) taken off a positive balance for the IM check; optional
mm_haircut   fraction in [0, 1) taken off a positive balance for the MM check; optional
===========  ====================================================================================

Several rows for the same (account, asset) are summed.

Haircuts
--------
A haircut applies to positive balances only (a debt counts in full). When the table does not give one,
the asset's entry of :data:`DEFAULT_HAIRCUTS` is used, and the account's own margin currency (``USD`` for
USD-margined accounts, the coin for coin-margined accounts) has no haircut: it is what the account's
P&L settles in. These defaults are house choices of the same order as the exchanges' cross-collateral
haircuts, not published figures: give explicit haircuts for a real venue.

Collateral that moves with the market
-------------------------------------
An asset that is an underlying of the snapshot, or the settlement coin of one (``BTC`` for ``BTC``), is
*linked*: in a scenario where that underlying moves by the relative move ``m`` its USD price becomes
``price * (1 + m)`` (an explicit ``price`` column moves the same way). Stablecoins and USD do not move.
For a coin-margined account the margin currency itself moves, so its coin balance is constant in coin
while its USD balances shrink in coin when the coin rises.

Margin currency
---------------
Values are returned in USD and in each account's margin currency (``margin_currency`` mapping,
default ``USD``) converted at the (moved) USD price of that currency.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from greeksmargin import io
from greeksmargin.book.tables import check_columns, check_magnitude
from greeksmargin.errors import ArgumentTypeError, InputError, MarketDataError

if TYPE_CHECKING:
    from greeksmargin.book.market import MarketSnapshot

__all__ = [
    "COLUMNS",
    "DEFAULT_HAIRCUTS",
    "asset_underlying",
    "collateral_exposure",
    "load_collateral",
    "load_example_collateral",
    "value_collateral",
]

COLUMNS = ("account", "asset", "amount", "price", "im_haircut", "mm_haircut")
#: largest accepted |amount| (units of the asset) and price (USD)
MAX_AMOUNT = 1e15
REQUIRED = ("account", "asset", "amount")

#: (IM haircut, MM haircut) per asset when the table gives none; house defaults (see module docstring)
DEFAULT_HAIRCUTS: dict[str, tuple[float, float]] = {
    "USD": (0.0, 0.0),
    "USDC": (0.0, 0.0),
    "USDT": (0.02, 0.01),
    "BTC": (0.05, 0.025),
    "ETH": (0.07, 0.035),
    "SOL": (0.15, 0.075),
}
#: haircuts of an asset not in :data:`DEFAULT_HAIRCUTS`
OTHER_HAIRCUT: tuple[float, float] = (0.20, 0.10)


def _err(msg: str, file: str, is_file: bool, row: Any, column: str | None) -> InputError:
    if is_file and row is not None and file.lower().endswith(".csv"):
        msg = f"{msg} (CSV line {int(row) + 2})"
    return InputError(msg, file=file, row=row, column=column)


def load_collateral(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Read and validate a collateral table.

    Parameters
    ----------
    source : str, Path or DataFrame
        A CSV / Parquet file or a DataFrame with the columns of the module docstring.

    Returns
    -------
    pandas.DataFrame
        Columns ``account`` (str), ``asset`` (str, upper case), ``amount`` (float), ``price``,
        ``im_haircut``, ``mm_haircut`` (float, NaN where not given: filled at valuation). The index of a
        DataFrame input is kept; a file's index is its 0-based data row.

    Raises
    ------
    InputError
        Missing column, empty account / asset, non-numeric or non-finite amount, price <= 0,
        haircut outside [0, 1); the message names the file, the row and the column.
    """
    if isinstance(source, pd.DataFrame):
        is_file, file, df = False, "<DataFrame>", source.copy()
    else:
        if not isinstance(source, (str, Path)):
            raise ArgumentTypeError("source", "a collateral file path (str or Path) or a DataFrame", source)
        is_file, file = True, str(source)
        df = io.read_table(source, keep_default_na=False, na_values=[""])
    check_columns(df.columns, known=COLUMNS, required=REQUIRED, file=file, strict=True)
    out = pd.DataFrame(index=df.index)
    for c in ("account", "asset"):
        s = df[c]
        bad = s.isna() | (s.astype(str).str.strip() == "")
        if bad.any():
            raise _err(f"{c} must be a non-empty name", file, is_file, bad[bad].index[0], c)
        out[c] = s.astype(str).str.strip()
    out["asset"] = out["asset"].str.upper()
    for c in ("amount", "price", "im_haircut", "mm_haircut"):
        if c not in df.columns:
            out[c] = np.nan
            continue
        if df[c].dtype == bool or pd.api.types.is_complex_dtype(df[c].dtype):
            raise _err(f"{c} must be a real number (got a {df[c].dtype} column)", file, is_file,
                       df.index[0] if len(df) else None, c)
        num = pd.to_numeric(df[c], errors="coerce")
        not_num = num.isna() & df[c].notna() & (df[c].astype(str).str.strip() != "")
        if not_num.any():
            r = not_num[not_num].index[0]
            raise _err(f"{c} must be a number (got {df[c].loc[r]!r})", file, is_file, r, c)
        out[c] = num.astype(float)
    amount = out["amount"]
    bad = ~np.isfinite(amount)
    if bad.any():
        r = bad[bad].index[0]
        raise _err(f"amount must be a finite number (got {amount.loc[r]!r})", file, is_file, r, "amount")

    def err(msg: str, row: Any, column: str | None) -> InputError:
        return _err(msg, file, is_file, row, column)

    check_magnitude(amount.to_numpy(), out.index, "amount", err, max_abs=MAX_AMOUNT)
    check_magnitude(out["price"].to_numpy(), out.index, "price", err, max_abs=MAX_AMOUNT)
    price = out["price"]
    bad = price.notna() & ~(price > 0)
    if bad.any():
        r = bad[bad].index[0]
        raise _err(f"price must be positive (got {price.loc[r]!r})", file, is_file, r, "price")
    for c in ("im_haircut", "mm_haircut"):
        h = out[c]
        bad = h.notna() & ~((h >= 0) & (h < 1))
        if bad.any():
            r = bad[bad].index[0]
            raise _err(f"{c} must be in [0, 1) (got {h.loc[r]!r})", file, is_file, r, c)
    out.attrs["source"] = file
    return out


def load_example_collateral() -> pd.DataFrame:
    """Collateral of the accounts of the bundled example book (``datasets/data/example_collateral.csv``)."""
    return load_collateral(Path(__file__).resolve().parents[1] / "datasets" / "data" / "example_collateral.csv")


def asset_underlying(asset: str, market: MarketSnapshot) -> str | None:
    """The underlying whose move moves ``asset``'s price: itself, or the underlying it settles; else None."""
    if asset in market:
        return asset
    for u in market.underlyings:
        if market.currency(u) == asset:
            return u
    return None


def _moved_fx(ccy: str, market: MarketSnapshot, moves: Mapping[str, float]) -> float:
    u = asset_underlying(ccy, market)
    base = market.fx_to_usd(ccy)
    return base * (1.0 + float(moves.get(u, 0.0))) if u is not None else base


def value_collateral(
    collateral: pd.DataFrame,
    market: MarketSnapshot,
    *,
    margin_currency: Mapping[str, str] | None = None,
    moves: Mapping[str, float] | None = None,
    accounts: list[str] | None = None,
) -> pd.DataFrame:
    """Value each account's collateral in USD and in its margin currency, with and without haircuts.

    Parameters
    ----------
    collateral : DataFrame
        A table from :func:`load_collateral`.
    market : MarketSnapshot
        Supplies default prices (``fx_to_usd``) and the links of coins to underlyings.
    margin_currency : mapping of str -> str, optional
        Margin currency per account (default ``USD``).
    moves : mapping of str -> float, optional
        Relative move per underlying (0.1 = +10%); linked assets move with it.
    accounts : list of str, optional
        Accounts to report (those without collateral get zeros); default every account of the table.

    Returns
    -------
    pandas.DataFrame
        One row per account (index ``account``) with ``margin_currency``, ``fx`` (USD per unit of the
        margin currency, moved), ``value_usd`` (no haircut), ``im_value_usd``, ``mm_value_usd`` (after
        haircuts), and ``value``, ``im_value``, ``mm_value`` in the margin currency.

    Raises
    ------
    MarketDataError
        An asset without a price in the table and without an FX rate in the snapshot.
    """
    moves = dict(moves or {})
    mc = dict(margin_currency or {})
    accts = list(accounts) if accounts is not None else list(pd.unique(collateral["account"]))
    c = collateral[collateral["account"].isin(accts)] if accounts is not None else collateral
    assets = pd.unique(c["asset"])
    base_px: dict[str, float] = {}
    link: dict[str, str | None] = {}
    for a in assets:
        link[a] = asset_underlying(a, market)
        try:
            base_px[a] = market.fx_to_usd(a)
        except MarketDataError:
            base_px[a] = np.nan
    price = c["price"].to_numpy(dtype=float)
    asset = c["asset"].to_numpy(dtype=object)
    default_px = np.array([base_px[a] for a in asset], dtype=float)
    price = np.where(np.isnan(price), default_px, price)
    if np.isnan(price).any():
        i = int(np.flatnonzero(np.isnan(price))[0])
        src = c.attrs.get("source")
        raise MarketDataError(
            f"asset '{asset[i]}' has no price in the collateral table and no FX rate in the market snapshot "
            f"{market.source}",
            file=src, row=c.index[i] if src else None, column="asset" if src else None,
        )
    factor = np.ones(len(asset), dtype=float)
    for i, a in enumerate(asset):
        u = link[a]
        if u is not None:
            factor[i] = 1.0 + float(moves.get(u, 0.0))
    price = price * factor
    acct = c["account"].to_numpy(dtype=object)
    own = np.array([mc.get(a, "USD") == s for a, s in zip(acct, asset)], dtype=bool)
    h_im, h_mm = _haircuts(c, asset, own)
    amount = c["amount"].to_numpy(dtype=float)
    val = amount * price
    pos = val > 0
    im_val = np.where(pos, val * (1.0 - h_im), val)
    mm_val = np.where(pos, val * (1.0 - h_mm), val)
    sums = (
        pd.DataFrame({"account": acct, "value_usd": val, "im_value_usd": im_val, "mm_value_usd": mm_val})
        .groupby("account", sort=False)
        .sum()
        .reindex(accts, fill_value=0.0)
    )
    sums.index.name = "account"
    ccys = [mc.get(a, "USD") for a in accts]
    fx_cache = {k: _moved_fx(k, market, moves) for k in set(ccys)}
    fx = np.array([fx_cache[k] for k in ccys], dtype=float)
    out = pd.DataFrame({"margin_currency": ccys, "fx": fx}, index=sums.index)
    for k in ("value_usd", "im_value_usd", "mm_value_usd"):
        out[k] = sums[k].to_numpy(dtype=float)
        out[k.replace("_usd", "")] = out[k] / fx
    return out


def _haircuts(
    c: pd.DataFrame, asset: NDArray[Any], own: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    d_im = np.array([DEFAULT_HAIRCUTS.get(a, OTHER_HAIRCUT)[0] for a in asset], dtype=float)
    d_mm = np.array([DEFAULT_HAIRCUTS.get(a, OTHER_HAIRCUT)[1] for a in asset], dtype=float)
    d_im = np.where(own, 0.0, d_im)
    d_mm = np.where(own, 0.0, d_mm)
    h_im = c["im_haircut"].to_numpy(dtype=float)
    h_mm = c["mm_haircut"].to_numpy(dtype=float)
    return np.where(np.isnan(h_im), d_im, h_im), np.where(np.isnan(h_mm), d_mm, h_mm)


def collateral_exposure(
    collateral: pd.DataFrame,
    market: MarketSnapshot,
    accounts: list[str],
    *,
    margin_currency: Mapping[str, str] | None = None,
    haircut: str = "mm",
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Collateral of each account split into a fixed USD part and USD holdings linked to each underlying.

    The USD value of the collateral at relative moves ``m`` (shape (n_underlyings,)) is
    ``fixed + linked @ (1 + m)``: the form the vectorised cascade uses.

    Parameters
    ----------
    collateral : DataFrame
        A table from :func:`load_collateral`.
    market : MarketSnapshot
        Prices and links of coins to underlyings (order of ``market.underlyings``).
    accounts : list of str, length n_accounts
        Row order of the output.
    margin_currency : mapping of str -> str, optional
        Margin currency per account (its own currency has no default haircut).
    haircut : {"mm", "im", "none"}
        Which haircut to apply to positive balances.

    Returns
    -------
    fixed : ndarray of shape (n_accounts,)
        USD value of the balances that do not move.
    linked : ndarray of shape (n_accounts, n_underlyings)
        USD value today of the balances that move with each underlying.
    """
    unders = market.underlyings
    u_pos = {u: i for i, u in enumerate(unders)}
    vc = value_collateral(collateral, market, margin_currency=margin_currency, accounts=accounts)
    del vc  # validates prices (raises on a missing one)
    mc = dict(margin_currency or {})
    c = collateral[collateral["account"].isin(accounts)]
    asset = c["asset"].to_numpy(dtype=object)
    price = c["price"].to_numpy(dtype=float)
    px = np.array([market.fx_to_usd(a) if np.isnan(p) else p for a, p in zip(asset, price)], dtype=float)
    acct = c["account"].to_numpy(dtype=object)
    own = np.array([mc.get(a, "USD") == s for a, s in zip(acct, asset)], dtype=bool)
    h_im, h_mm = _haircuts(c, asset, own)
    h = {"mm": h_mm, "im": h_im, "none": np.zeros_like(h_mm)}[haircut]
    val = c["amount"].to_numpy(dtype=float) * px
    val = np.where(val > 0, val * (1.0 - h), val)
    row = pd.Index(accounts).get_indexer(acct)
    col = np.array([u_pos.get(asset_underlying(a, market) or "", -1) for a in asset], dtype=int)
    fixed = np.zeros(len(accounts))
    linked = np.zeros((len(accounts), len(unders)))
    m = col < 0
    np.add.at(fixed, row[m], val[m])
    np.add.at(linked, (row[~m], col[~m]), val[~m])
    return fixed, linked
