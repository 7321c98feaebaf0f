"""Position quantities given in an exchange's unit (coin, USD, contracts) -> the product's ``quantity``.

The product's unit
------------------
For every kind and settlement, ``quantity x multiplier`` is the signed amount of the **underlying** the
position is exposed to (coins for BTC / ETH, index units for SPX), + long:

==========================  ==========================================================================
kind, settlement            ``quantity`` (x ``multiplier``)
==========================  ==========================================================================
option (inverse or linear)  contracts; x multiplier = coins of underlying (Deribit: 1 contract = 1 coin,
                            multiplier 1; a listed equity option: multiplier 100 shares)
future / perpetual, linear  contracts; x multiplier = coins (Deribit ``BTC_USDC-PERPETUAL``: size / 0.001
                            contracts, multiplier 0.001, or the coins with multiplier 1)
future / perpetual, inverse **coins** (x multiplier 1): the USD face value divided by the mark price,
                            Deribit's ``size_currency``; **never** Deribit's ``size``, which is in USD
spot                        coins (x multiplier)
==========================  ==========================================================================

So a Deribit ``BTC-PERPETUAL`` position of ``size`` 250,000 (USD) at mark 97,362.5 is ``quantity``
2.5677 (BTC). Taken as a coin amount, 250,000 would be a 24 billion USD position.

:func:`convert_quantity` converts a table carrying a ``quantity_unit`` column (``coin``, ``usd`` or
``contracts``) to that unit; :func:`flag_implausible_inverse` flags inverse futures / perpetuals whose
quantity cannot be a coin amount. Pure functions: tables in, tables out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from greeksmargin.errors import InputError

__all__ = [
    "QUANTITY_UNITS",
    "DEFAULT_MAX_NOTIONAL_USD",
    "check_inverse_plausible",
    "convert_quantity",
    "flag_implausible_inverse",
]

QUANTITY_UNITS = ("coin", "usd", "contracts")
#: house threshold of :func:`flag_implausible_inverse`: a single futures position above one billion USD of
#: notional is taken as a unit mistake (of the order of the whole open interest of a venue's BTC futures), not
#: a published bound; a parameter, and it only flags (never refuses or rescales)
DEFAULT_MAX_NOTIONAL_USD = 1e9
#: columns consumed by :func:`convert_quantity`
UNIT_COLUMNS = ("quantity_unit", "contract_size", "mark_price")


def _col(df: pd.DataFrame, name: str, default: Any) -> pd.Series:
    return df[name] if name in df.columns else pd.Series(default, index=df.index, dtype=object)


def _numbers(s: pd.Series, column: str, file: str | None, need: np.ndarray, what: str) -> np.ndarray:
    x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
    bad = need & ~(np.isfinite(x) & (x > 0))
    if bad.any():
        row = s.index[int(np.argmax(bad))]
        raise InputError(f"{what} must be a positive number (got {s.loc[row]!r})", file=file, row=row, column=column)
    return x


def convert_quantity(
    table: pd.DataFrame,
    *,
    contract_sizes: Mapping[str, float] | None = None,
    file: str | None = None,
) -> pd.DataFrame:
    """Convert ``quantity`` from the unit of a ``quantity_unit`` column to the product's unit.

    Parameters
    ----------
    table : DataFrame of shape (n, k)
        Positions with ``quantity``, ``kind``, ``settlement`` (default ``linear``), ``multiplier`` (default 1)
        and ``quantity_unit`` (``coin`` | ``usd`` | ``contracts``, case-insensitive). Used when needed:
        ``contract_size`` (per row) or ``contract_sizes`` (per ``instrument``): the exchange's contract size,
        **USD per contract for inverse futures / perpetuals** (Deribit: 10 for BTC, 1 for ETH) and units of
        underlying per contract otherwise (Deribit options 1, ``BTC_USDC-PERPETUAL`` 0.001);
        ``mark_price`` (USD per coin) to turn USD into coins.
    contract_sizes : mapping of str -> float, optional
        Contract size per instrument name, for rows whose ``contract_size`` cell is empty or absent.
    file : str, optional
        Named in error messages.

    Returns
    -------
    DataFrame of shape (n, k - c)
        The table with ``quantity`` such that ``quantity x multiplier`` is the signed amount of underlying
        (module docstring), and the columns ``quantity_unit``, ``contract_size``, ``mark_price`` removed. A
        table without ``quantity_unit`` is returned unchanged (a copy).

    Raises
    ------
    InputError
        Unknown or empty unit; a quantity in USD for an option (ambiguous: premium or notional); a contract
        size or mark price that is needed and missing or not positive. Names the row and the column.

    Notes
    -----
    Coins ``c`` from the given quantity ``q``: ``coin``: ``c = q``; ``contracts``: ``c = q x contract_size``
    (inverse futures / perpetuals: ``c = q x contract_size / mark_price``); ``usd``: ``c = q / mark_price``.
    Then ``quantity = c / multiplier``.
    """
    out = table.copy()
    if "quantity_unit" not in out.columns:
        return out
    n = len(out)
    idx = out.index
    unit = out["quantity_unit"].astype(object)
    unit_s = unit.where(unit.notna(), "").astype(str).str.strip().str.lower()
    bad = ~unit_s.isin(QUANTITY_UNITS)
    if bad.any():
        row = idx[int(np.argmax(bad.to_numpy()))]
        raise InputError(f"unknown quantity unit {unit.loc[row]!r} (use one of {', '.join(QUANTITY_UNITS)})",
                         file=file, row=row, column="quantity_unit")
    kind = _col(out, "kind", "").astype(str).str.strip().str.lower().to_numpy()
    settle = _col(out, "settlement", "linear").astype(object)
    settle = settle.where(settle.notna(), "linear").astype(str).str.strip().str.lower().to_numpy()
    inverse_fut = np.isin(kind, ("future", "perpetual")) & (settle == "inverse")
    u = unit_s.to_numpy()
    is_usd, is_ctr = u == "usd", u == "contracts"
    opt_usd = is_usd & (kind == "option")
    if opt_usd.any():
        row = idx[int(np.argmax(opt_usd))]
        raise InputError("an option quantity in USD is ambiguous (premium or notional): give coin or contracts",
                         file=file, row=row, column="quantity_unit")
    q = pd.to_numeric(out["quantity"], errors="coerce").to_numpy(dtype=float)
    nonfinite = ~np.isfinite(q)
    if nonfinite.any():
        row = idx[int(np.argmax(nonfinite))]
        raise InputError(f"quantity must be a finite number (got {out['quantity'].loc[row]!r})", file=file, row=row,
                         column="quantity")
    mult = _numbers(_col(out, "multiplier", 1.0).where(_col(out, "multiplier", 1.0).notna(), 1.0), "multiplier",
                    file, np.ones(n, bool), "multiplier")
    cs_col = _col(out, "contract_size", np.nan)
    if contract_sizes is not None:
        from_map = _col(out, "instrument", "").map(dict(contract_sizes))
        cs_col = cs_col.where(pd.to_numeric(cs_col, errors="coerce").notna(), from_map)
    cs = _numbers(cs_col, "contract_size", file, is_ctr, "contract size (needed for a quantity in contracts)")
    need_mark = is_usd | (is_ctr & inverse_fut)
    mark = _numbers(_col(out, "mark_price", np.nan), "mark_price", file, need_mark,
                    "mark price (USD per coin, needed to turn USD into coins)")
    with np.errstate(invalid="ignore", divide="ignore"):
        coins = np.where(is_usd, q / mark, q)
        coins = np.where(is_ctr & ~inverse_fut, q * cs, coins)
        coins = np.where(is_ctr & inverse_fut, q * cs / mark, coins)
    out["quantity"] = coins / mult
    return out.drop(columns=[c for c in UNIT_COLUMNS if c in out.columns])


def _spot_of(market: Any, underlying: str) -> float:
    if isinstance(market, Mapping):
        return float(market[underlying])
    return float(market.spot(underlying))


def flag_implausible_inverse(
    table: pd.DataFrame,
    market: Any,
    *,
    max_notional_usd: float = DEFAULT_MAX_NOTIONAL_USD,
    file: str | None = None,
) -> pd.DataFrame:
    """Inverse futures / perpetuals whose ``quantity`` cannot be a coin amount (a USD size taken as coins).

    Rule: a row of kind ``future`` or ``perpetual`` with ``settlement = inverse`` is flagged when its coin
    amount read as the product's unit, ``|quantity x multiplier|``, is worth more than ``max_notional_usd``
    at the underlying's spot. Deribit's ``size`` of such a contract is in USD: taken as coins it is
    multiplied by the coin price (a 250,000 USD perpetual becomes 24 billion USD at 97,000), which is
    what the threshold catches; the reason gives the coin amount the figure would be if it were USD.

    Parameters
    ----------
    table : DataFrame of shape (n, k)
        Positions in the product's unit (``instrument``, ``underlying``, ``kind``, ``settlement``,
        ``quantity``, optional ``multiplier``).
    market : MarketSnapshot or mapping of str -> float
        Spot (USD) per underlying (anything with ``spot(underlying)``, or a dict).
    max_notional_usd : float
        Largest plausible notional of one position, USD (default :data:`DEFAULT_MAX_NOTIONAL_USD`, a house
        choice).
    file : str, optional
        Named in error messages.

    Returns
    -------
    DataFrame of shape (n_flagged, 7)
        ``row`` (index label), ``instrument``, ``underlying``, ``quantity``, ``coin_amount``,
        ``notional_usd``, ``reason``; empty when nothing is implausible.

    Raises
    ------
    InputError
        ``max_notional_usd`` not positive, or an underlying without a spot (names the row).
    """
    if not (np.isfinite(max_notional_usd) and max_notional_usd > 0):
        raise InputError(f"max_notional_usd must be a positive number (got {max_notional_usd!r})")
    cols = ["row", "instrument", "underlying", "quantity", "coin_amount", "notional_usd", "reason"]
    kind = _col(table, "kind", "").astype(str).str.strip().str.lower()
    settle = _col(table, "settlement", "linear").astype(str).str.strip().str.lower()
    sel = table[kind.isin(["future", "perpetual"]) & (settle == "inverse")]
    rows = []
    for label, r in sel.iterrows():
        und = str(r["underlying"])
        try:
            spot = _spot_of(market, und)
        except (KeyError, LookupError, ValueError) as exc:
            raise InputError(f"no spot for underlying '{und}' ({exc})", file=file, row=label,
                             column="underlying") from None
        mult = r.get("multiplier", 1.0)
        mult = 1.0 if mult is None or pd.isna(mult) else float(mult)
        coins = float(r["quantity"]) * mult
        notional = abs(coins) * spot
        if notional > max_notional_usd:
            reason = (f"{coins:,.10g} {und} of an inverse {r['kind']} is {notional:,.4g} USD at spot {spot:,.10g}, "
                      f"above max_notional_usd {max_notional_usd:,.4g}: probably a USD size taken as coins "
                      f"(as USD it is {coins / spot:,.10g} {und})")
            rows.append([label, r.get("instrument"), und, float(r["quantity"]), coins, notional, reason])
    return pd.DataFrame(rows, columns=cols)


def check_inverse_plausible(
    table: pd.DataFrame,
    market: Any,
    *,
    max_notional_usd: float = DEFAULT_MAX_NOTIONAL_USD,
    file: str | None = None,
) -> None:
    """Raise :class:`InputError` naming the first row :func:`flag_implausible_inverse` flags (parameters there)."""
    flags = flag_implausible_inverse(table, market, max_notional_usd=max_notional_usd, file=file)
    if len(flags):
        first = flags.iloc[0]
        raise InputError(str(first["reason"]), file=file, row=first["row"], column="quantity")
