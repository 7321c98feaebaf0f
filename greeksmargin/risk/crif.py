"""CRIF (ISDA Common Risk Interchange Format) tables: column names, types, FX conversion, checks.

A CRIF row is one sensitivity (or one add-on parameter) of a trade: ``ProductClass, RiskType, Qualifier,
Bucket, Label1, Label2`` and the amount, either ``AmountUSD`` or ``Amount`` with ``AmountCurrency``
(converted with user-given FX rates, USD per unit of the currency). Optional columns kept when present:
``TradeID, PortfolioID`` (and any other column, untouched). Column names are matched case- and
separator-insensitively (``amount_usd``, ``AMOUNTUSD``, ``Amount USD`` are all ``AmountUSD``).

:func:`normalize_crif` is vectorised (string columns are cleaned per distinct value, not per row) so that a
million-row CRIF is checked in well under a second. File reading is :func:`greeksmargin.io.read_crif`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from greeksmargin import io
from greeksmargin.errors import InputError

#: canonical CRIF columns used by SIMM
CRIF_COLUMNS = ["ProductClass", "RiskType", "Qualifier", "Bucket", "Label1", "Label2", "AmountUSD"]
#: optional columns carried through
OPTIONAL_COLUMNS = ["TradeID", "PortfolioID", "Amount", "AmountCurrency", "CollectRegulations", "PostRegulations",
                    "EndDate"]
_CANON = {c.lower(): c for c in CRIF_COLUMNS + OPTIONAL_COLUMNS}
_CANON.update({"tradeid": "TradeID", "trade": "TradeID", "portfolioid": "PortfolioID", "portfolio": "PortfolioID",
               "amountccy": "AmountCurrency", "currency": "AmountCurrency"})

#: risk type -> (risk class, measure); measure "Delta" or "Vega" (curvature comes from vega)
RISK_TYPES: dict[str, tuple[str, str]] = {
    "Risk_IRCurve": ("InterestRate", "Delta"),
    "Risk_Inflation": ("InterestRate", "Delta"),
    "Risk_XCcyBasis": ("InterestRate", "Delta"),
    "Risk_IRVol": ("InterestRate", "Vega"),
    "Risk_InflationVol": ("InterestRate", "Vega"),
    "Risk_CreditQ": ("CreditQualifying", "Delta"),
    "Risk_BaseCorr": ("CreditQualifying", "Delta"),
    "Risk_CreditVol": ("CreditQualifying", "Vega"),
    "Risk_CreditNonQ": ("CreditNonQualifying", "Delta"),
    "Risk_CreditVolNonQ": ("CreditNonQualifying", "Vega"),
    "Risk_Equity": ("Equity", "Delta"),
    "Risk_EquityVol": ("Equity", "Vega"),
    "Risk_Commodity": ("Commodity", "Delta"),
    "Risk_CommodityVol": ("Commodity", "Vega"),
    "Risk_FX": ("FX", "Delta"),
    "Risk_FXVol": ("FX", "Vega"),
}
#: add-on and parameter rows (no risk class)
PARAM_TYPES = ("Param_ProductClassMultiplier", "Param_AddOnNotionalFactor", "Notional", "Param_AddOnFixedAmount",
               "PV")
PRODUCT_CLASSES = ("RatesFX", "Credit", "Equity", "Commodity")
_RT_LOWER = {k.lower(): k for k in list(RISK_TYPES) + list(PARAM_TYPES)}
_PC_LOWER = {k.lower(): k for k in PRODUCT_CLASSES}


def canonical_column(name: Any) -> str | None:
    """Canonical CRIF name of a column header, or None when it is not a CRIF column."""
    key = "".join(ch for ch in str(name).strip().lower() if ch.isalnum())
    return _CANON.get(key)


def _map_unique(values: pd.Series, fn: Callable[[str], str]) -> pd.Series:
    """Apply a string function once per distinct value (vectorised cleaning of big string columns)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.array([fn(u) for u in uniques] + [fn("")], dtype=object)
    return pd.Series(mapped[codes], index=values.index)


def _clean_text(x: Any) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return ""
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x).strip()


def _text_column(values: pd.Series) -> pd.Series:
    """Strings stripped, missing as ``""``; vectorised for text columns, per distinct value otherwise."""
    if pd.api.types.is_string_dtype(values) or values.dtype == object:
        out = values.fillna("").astype(str).str.strip()
        if values.dtype == object and len(values) and not all(isinstance(v, str) for v in values.iloc[:1000]):
            return _map_unique(values, _clean_text)
        return out
    return _map_unique(values, _clean_text)


def bucket_name(b: Any) -> str:
    """Canonical SIMM bucket label: ``"1"`` for 1 / 1.0 / "1.0", ``"Residual"`` for any case of it."""
    text = _clean_text(b)
    if text.lower() == "residual":
        return "Residual"
    if text.endswith(".0") and text[:-2].isdigit():
        return text[:-2]
    return text


def _first_bad(mask: np.ndarray | pd.Series, index: pd.Index) -> Any:
    return index[np.asarray(mask)][0]


def normalize_crif(
    crif: pd.DataFrame | list[dict[str, Any]],
    fx_rates: Mapping[str, float] | None = None,
    *,
    file: str = "<CRIF>",
) -> pd.DataFrame:
    """Return the CRIF with canonical column names, clean types and amounts in USD.

    Parameters
    ----------
    crif : DataFrame or list of dict
        CRIF rows (see the module docstring). ``Bucket``, ``Label1``, ``Label2``, ``ProductClass`` may be
        missing (taken as empty; ProductClass is needed by every sensitivity row).
    fx_rates : mapping, optional
        USD per unit of currency (``{"EUR": 1.08}``) to convert ``Amount`` in ``AmountCurrency`` when
        ``AmountUSD`` is missing or empty on a row. USD needs no rate.
    file : str, default "<CRIF>"
        Name used in error messages.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CRIF_COLUMNS` plus ``TradeID`` and ``PortfolioID`` (empty when absent) and any other
        input column; RiskType and ProductClass in their canonical spelling; Risk_FXVol qualifiers as
        the alphabetically ordered pair (``USDGBP`` -> ``GBPUSD``); ``AmountUSD`` float, finite.

    Raises
    ------
    InputError
        Naming file, row (0-based data row) and column: missing or duplicate columns, amounts that are
        not finite numbers, a missing FX rate, unknown risk types or product classes, bad FX qualifiers.
    """
    if isinstance(crif, pd.DataFrame) and crif.attrs.get("normalized_crif") and fx_rates is None:
        return crif
    if isinstance(crif, pd.DataFrame):
        df = crif.copy()
    elif isinstance(crif, list | tuple):
        df = pd.DataFrame(list(crif))
    else:
        raise InputError(f"CRIF must be a DataFrame or a list of rows, got {type(crif).__name__}", file=file)
    rename: dict[Any, str] = {}
    seen: dict[str, Any] = {}
    for col in df.columns:
        canon = canonical_column(col)
        if canon is None:
            continue
        if canon in seen:
            raise InputError(f"duplicate CRIF column (also '{seen[canon]}')", file=file, column=str(col))
        seen[canon] = col
        rename[col] = canon
    df = df.rename(columns=rename)
    df.index = pd.RangeIndex(len(df))
    for col in ("RiskType", "Qualifier"):
        if col not in df.columns:
            raise InputError("missing CRIF column", file=file, column=col)
    for col in ("ProductClass", "Bucket", "Label1", "Label2", "TradeID", "PortfolioID"):
        if col not in df.columns:
            df[col] = ""
    for col in ("Qualifier", "Label1", "Label2", "TradeID", "PortfolioID"):
        df[col] = _text_column(df[col])
    df["Bucket"] = _map_unique(df["Bucket"], bucket_name)
    df["RiskType"] = _map_unique(df["RiskType"], lambda x: _RT_LOWER.get(_clean_text(x).lower(), _clean_text(x)))
    df["ProductClass"] = _map_unique(df["ProductClass"],
                                     lambda x: _PC_LOWER.get(_clean_text(x).lower(), _clean_text(x)))
    known = df["RiskType"].isin(list(RISK_TYPES) + list(PARAM_TYPES)).to_numpy()
    if not known.all():
        row = _first_bad(~known, df.index)
        raise InputError(f"unknown risk type '{df.loc[row, 'RiskType']}' (known: {', '.join(RISK_TYPES)}, "
                         f"{', '.join(PARAM_TYPES)})", file=file, row=row, column="RiskType")
    is_sens = df["RiskType"].isin(list(RISK_TYPES)).to_numpy()
    bad_pc = is_sens & ~df["ProductClass"].isin(PRODUCT_CLASSES).to_numpy()
    if bad_pc.any():
        row = _first_bad(bad_pc, df.index)
        raise InputError(f"unknown product class '{df.loc[row, 'ProductClass']}' (known: "
                         f"{', '.join(PRODUCT_CLASSES)})", file=file, row=row, column="ProductClass")
    df["AmountUSD"] = _amount_usd(df, fx_rates, file)
    _check_fx(df, file)
    df.attrs["normalized_crif"] = True
    return df


def _amount_usd(df: pd.DataFrame, fx_rates: Mapping[str, float] | None, file: str) -> pd.Series:
    if "AmountUSD" in df.columns:
        usd = pd.to_numeric(df["AmountUSD"], errors="coerce")
        raw_missing = df["AmountUSD"].isna() | (df["AmountUSD"].astype(str).str.strip() == "")
    else:
        if "Amount" not in df.columns:
            raise InputError("missing CRIF column (need AmountUSD, or Amount with AmountCurrency)", file=file,
                             column="AmountUSD")
        usd = pd.Series(np.nan, index=df.index)
        raw_missing = pd.Series(True, index=df.index)
    bad = (~raw_missing & ~np.isfinite(usd.fillna(np.inf))).to_numpy()
    if bad.any():
        row = _first_bad(bad, df.index)
        raise InputError(f"AmountUSD is not a finite number: {df.loc[row, 'AmountUSD']!r}", file=file, row=row,
                         column="AmountUSD")
    need = raw_missing.to_numpy()
    if need.any():
        if "Amount" not in df.columns:
            row = _first_bad(need, df.index)
            raise InputError("AmountUSD is empty and there is no Amount column", file=file, row=row,
                             column="AmountUSD")
        if "AmountCurrency" not in df.columns:
            raise InputError("Amount given without AmountCurrency", file=file, column="AmountCurrency")
        amt = pd.to_numeric(df["Amount"], errors="coerce")
        bad = need & ~np.isfinite(amt.fillna(np.inf)).to_numpy()
        if bad.any():
            row = _first_bad(bad, df.index)
            raise InputError(f"Amount is not a finite number: {df.loc[row, 'Amount']!r}", file=file, row=row,
                             column="Amount")
        ccy = _map_unique(df["AmountCurrency"], lambda x: _clean_text(x).upper())
        rates = {str(k).upper(): float(v) for k, v in (fx_rates or {}).items()}
        rates.setdefault("USD", 1.0)
        for k, v in rates.items():
            if not (np.isfinite(v) and v > 0):
                raise InputError(f"FX rate for {k} must be a positive finite number, got {v}", file=file,
                                 column="AmountCurrency")
        rate = ccy.map(rates).to_numpy(dtype=float)
        # multipliers and notional factors are pure numbers, never converted
        unitless = df["RiskType"].isin(["Param_ProductClassMultiplier", "Param_AddOnNotionalFactor"]).to_numpy()
        rate = np.where(unitless, 1.0, rate)
        missing = need & np.isnan(rate)
        if missing.any():
            row = _first_bad(missing, df.index)
            raise InputError(f"no FX rate for AmountCurrency '{ccy[row]}' (give USD per unit, e.g. "
                             f"--fx-rate {ccy[row] or 'EUR'}=1.08)", file=file, row=row, column="AmountCurrency")
        usd = usd.where(~raw_missing, amt * rate)
    return usd.astype(float)


def fx_pair(q: str) -> str:
    """Canonical FX volatility qualifier: the two currencies in alphabetical order (``USDGBP`` -> ``GBPUSD``).

    The volatility of a pair does not depend on its quotation order, so both orders are one risk factor.
    Returns ``""`` when ``q`` is not two three-letter currency codes.
    """
    text = q.replace("/", "").replace("-", "").replace(" ", "").upper()
    if len(text) != 6 or not text.isalpha() or text[:3] == text[3:]:
        return ""
    a, b = sorted((text[:3], text[3:]))
    return a + b


def _check_fx(df: pd.DataFrame, file: str) -> None:
    vol = (df["RiskType"] == "Risk_FXVol").to_numpy()
    if vol.any():
        pairs = _map_unique(df["Qualifier"].where(vol, "XXXYYY"), fx_pair)
        bad = vol & (pairs == "").to_numpy()
        if bad.any():
            row = _first_bad(bad, df.index)
            raise InputError(f"FX volatility qualifier must be a currency pair such as EURUSD, got "
                             f"'{df.loc[row, 'Qualifier']}'", file=file, row=row, column="Qualifier")
        df.loc[vol, "Qualifier"] = pairs[vol]
    delta = (df["RiskType"] == "Risk_FX").to_numpy()
    if delta.any():
        q = _map_unique(df["Qualifier"].where(delta, "USD"), lambda x: x.upper())
        ok = _map_unique(q, lambda x: "1" if (len(x) == 3 and x.isalpha()) else "")
        bad = delta & (ok == "").to_numpy()
        if bad.any():
            row = _first_bad(bad, df.index)
            raise InputError(f"FX delta qualifier must be one currency such as EUR, got "
                             f"'{df.loc[row, 'Qualifier']}'", file=file, row=row, column="Qualifier")
        df.loc[delta, "Qualifier"] = q[delta]


def read_crif(path: str | Path, fx_rates: dict[str, float] | None = None) -> pd.DataFrame:
    """Read a CRIF file (ISDA Common Risk Interchange Format) and normalise it.

    Parameters
    ----------
    path : str or Path
        ``.csv`` (comma), ``.tsv`` / ``.txt`` (tab, the CRIF spec's own format; a comma-separated ``.txt`` is
        detected), or ``.parquet`` (read by :func:`greeksmargin.io.read_crif_table`).
    fx_rates : dict, optional
        USD per unit of currency for rows given as ``Amount`` + ``AmountCurrency`` without ``AmountUSD``.

    Returns
    -------
    pandas.DataFrame
        See :func:`normalize_crif`; errors name this file, the 0-based data row and the column.
    """
    return normalize_crif(io.read_crif_table(path), fx_rates, file=str(path))
