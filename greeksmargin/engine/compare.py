"""Compare a model with the margin an exchange charges, and run several models side by side on one book.

Exchange-margin file (CSV or Parquet; :func:`normalize_exchange_margin` checks it): one row per account with
``account`` (str), ``exchange_im`` (float), ``exchange_mm`` (float, optional: NaN or absent when unknown) and
``currency`` (optional: the currency of the two amounts; when absent the model's currency is assumed). The
bundled sample ``greeksmargin/datasets/data/example_exchange_margin.csv`` follows this format for the accounts
of the example book (illustrative figures, not real exchange data: see ``example_exchange_margin.md`` beside
it).

Ratios are ``model / exchange``; an account is an **outlier** when ``|ln(model / exchange)| > threshold`` for
IM or MM (default ``threshold = ln 1.25``: more than 25 % above or 20 % below the exchange). The **drivers**
of each account are its largest component rows (``|amount|``) of the result's tidy ``components`` table,
leaving out the totals (rules ``aggregation`` and ``combination``) and sub-detail rows (rule ``detail``, e.g. SIMM
per-bucket figures already counted in their measure).

Every function here is pure: tables in, tables out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from greeksmargin.book.tables import check_columns
from greeksmargin.errors import GreeksMarginError, InputError

__all__ = [
    "COMPARE_COLUMNS",
    "DEFAULT_THRESHOLD",
    "compare_with_exchange",
    "component_drivers",
    "normalize_exchange_margin",
    "side_by_side",
]

#: default outlier threshold on |ln(model / exchange)|
DEFAULT_THRESHOLD = math.log(1.25)

COMPARE_COLUMNS = [
    "account", "currency", "model_im", "exchange_im", "im_ratio", "im_log_ratio", "im_diff", "model_mm",
    "exchange_mm", "mm_ratio", "mm_log_ratio", "outlier", "status", "drivers",
]

#: largest accepted exchange margin (any currency)
MAX_MARGIN = 1e15

_TOTAL_RULES = ("aggregation", "combination", "detail")


def normalize_exchange_margin(df: pd.DataFrame, source: str = "<exchange margin>") -> pd.DataFrame:
    """Check and clean an exchange-margin table (format in the module docstring).

    Parameters
    ----------
    df : DataFrame
        Rows ``account, exchange_im[, exchange_mm][, currency]``; ``im``/``mm`` accepted for the amounts.
    source : str
        File name for error messages.

    Returns
    -------
    DataFrame
        Columns ``account`` (str), ``exchange_im``, ``exchange_mm`` (float, NaN when unknown), ``currency``
        (str, ``""`` when unknown); one row per account.

    Raises
    ------
    InputError
        Missing column, non-numeric or negative amount, duplicated account (names the row and column).
    """
    d = df.copy()
    d.columns = [str(c).strip().lower() for c in d.columns]
    d = d.rename(columns={"im": "exchange_im", "mm": "exchange_mm"})
    check_columns(d.columns, known=("account", "exchange_im", "exchange_mm", "currency"),
                  required=("account", "exchange_im"), file=source, strict=True)
    for col in ("account", "exchange_im"):
        if col not in d.columns:
            raise InputError("missing column in the exchange-margin table", file=source, column=col)
    if "exchange_mm" not in d.columns:
        d["exchange_mm"] = np.nan
    if "currency" not in d.columns:
        d["currency"] = ""
    d["account"] = d["account"].astype(str).str.strip()
    for col in ("exchange_im", "exchange_mm"):
        raw = d[col]
        num = pd.to_numeric(raw, errors="coerce")
        bad = num.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
        if col == "exchange_im":
            bad |= num.isna()
        bad |= (num < 0) | np.isinf(num) | (num.abs() > MAX_MARGIN)
        if bad.any():
            row = d.index[bad][0]
            raise InputError(f"not a non-negative finite number: {raw.loc[row]!r} (allowed 0 .. {MAX_MARGIN:.0e}"
                             f"{'' if col == 'exchange_im' else ', or empty when unknown'})", file=source, row=row,
                             column=col)
        d[col] = num.astype(float)
    d["currency"] = d["currency"].fillna("").astype(str).str.strip().str.upper()
    dup = d["account"].duplicated()
    if dup.any():
        row = d.index[dup][0]
        raise InputError(f"duplicate account '{d.loc[row, 'account']}' (listed twice)", file=source, row=row,
                         column="account")
    bad = (d["currency"] != "") & ~d["currency"].str.fullmatch(r"[A-Z][A-Z0-9]{1,9}")
    if bad.any():
        row = d.index[bad][0]
        raise InputError(f"not a currency code: {d.loc[row, 'currency']!r}", file=source, row=row, column="currency")
    return d[["account", "exchange_im", "exchange_mm", "currency"]].reset_index(drop=True)


def _accounts_and_components(result_or_accounts: Any) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    if isinstance(result_or_accounts, pd.DataFrame):
        comps = result_or_accounts.attrs.get("components")
        return result_or_accounts, comps if isinstance(comps, pd.DataFrame) else None
    acc = getattr(result_or_accounts, "accounts", None)
    if not isinstance(acc, pd.DataFrame):
        raise InputError("expected a MarginResult or an accounts DataFrame", column="result_or_accounts")
    comps = getattr(result_or_accounts, "components", None)
    return acc, comps if isinstance(comps, pd.DataFrame) else None


def component_drivers(components: pd.DataFrame, account: str, n: int = 3) -> pd.DataFrame:
    """The ``n`` largest component rows (by ``|amount|``) of an account, totals left out.

    Parameters
    ----------
    components : DataFrame
        Tidy rows ``account, underlying, rule, component, amount, currency``.
    account : str
        The account.
    n : int, default 3
        Rows kept.

    Returns
    -------
    DataFrame
        At most ``n`` rows of ``components``, largest ``|amount|`` first.
    """
    c = components[(components["account"].astype(str) == str(account))
                   & ~components["rule"].isin(_TOTAL_RULES)]
    c = c[np.isfinite(c["amount"].to_numpy(dtype=float)) & (c["amount"].to_numpy(dtype=float) != 0.0)]
    order = np.argsort(-np.abs(c["amount"].to_numpy(dtype=float)), kind="stable")
    return c.iloc[order[:n]]


def _ratio(model: float, exch: float) -> float:
    if not (math.isfinite(model) and math.isfinite(exch)):
        return math.nan
    if exch == 0.0:
        return 1.0 if model == 0.0 else math.inf
    return model / exch


def _log_ratio(ratio: float) -> float:
    """``ln ratio``; -inf for 0, +inf for +inf, NaN for a negative or NaN ratio."""
    if ratio == 0.0:
        return -math.inf
    if ratio == math.inf:
        return math.inf
    return math.log(ratio) if ratio > 0 and math.isfinite(ratio) else math.nan


def compare_with_exchange(
    result_or_accounts: Any,
    exchange_margin: pd.DataFrame,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    n_drivers: int = 3,
    fx_to_usd: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Model IM/MM against the exchange's, per account, with ratios, outliers and the components behind them.

    Parameters
    ----------
    result_or_accounts : MarginResult, AdapterMarginResult or DataFrame
        A result with ``.accounts`` (``account, im, mm, currency`` and optionally ``error``) and ``.components``
        (tidy rows), or the accounts table itself (components then from ``.attrs["components"]`` if present).
    exchange_margin : DataFrame
        The exchange's figures (see :func:`normalize_exchange_margin`).
    threshold : float, default ln(1.25)
        Outlier when ``|ln(model / exchange)|`` of IM or MM exceeds it (> 0).
    n_drivers : int, default 3
        Component rows listed per account in ``drivers``.
    fx_to_usd : mapping, optional
        USD value of one unit of each currency, used to convert exchange amounts into the model's currency when
        the two differ; without it such accounts get ``status = "currency mismatch"`` and NaN ratios.

    Returns
    -------
    DataFrame
        One row per account of either side (:data:`COMPARE_COLUMNS`): amounts in the model's currency,
        ``im_ratio = model_im / exchange_im`` (inf when the exchange charges 0 and the model does not; 1 when
        both are 0), ``im_log_ratio``, ``im_diff = model_im - exchange_im``, the same for MM, ``outlier`` (bool),
        ``status`` (``ok``, ``model error: ...``, ``not computed: ...`` (outside the model's domain),
        ``not in model``, ``not in exchange file``,
        ``currency mismatch``) and ``drivers`` (text: the largest component rows, ``component [underlying]
        amount``). Sorted by ``|im_log_ratio|``, largest first (NaN last).
    """
    if not threshold > 0:
        raise InputError(f"threshold must be > 0, got {threshold}", column="threshold")
    acc, comps = _accounts_and_components(result_or_accounts)
    ex = normalize_exchange_margin(exchange_margin)
    model = acc.copy()
    model["account"] = model["account"].astype(str)
    if "error" not in model.columns:
        model["error"] = None
    if "currency" not in model.columns:
        model["currency"] = ""
    # an account outside the model's domain: its reason in place of an error (never compared as a figure)
    if "status" in model.columns and "reason" in model.columns:
        nc = model["status"].astype(str) == "not_computed"
        model["error"] = model["error"].astype(object).where(~nc, model["reason"])
    merged = model[["account", "im", "mm", "currency", "error"]].merge(
        ex, on="account", how="outer", suffixes=("", "_exchange"), indicator="side")
    rows = []
    for r in merged.itertuples(index=False):
        d = r._asdict()
        ccy = d["currency"] if isinstance(d["currency"], str) and d["currency"] else ""
        ex_ccy = d["currency_exchange"] if isinstance(d["currency_exchange"], str) else ""
        m_im = float(d["im"]) if pd.notna(d["im"]) else math.nan
        m_mm = float(d["mm"]) if pd.notna(d["mm"]) else math.nan
        e_im = float(d["exchange_im"]) if pd.notna(d["exchange_im"]) else math.nan
        e_mm = float(d["exchange_mm"]) if pd.notna(d["exchange_mm"]) else math.nan
        status = "ok"
        if d["side"] == "right_only":
            status = "not in model"
            ccy = ex_ccy
        elif d["side"] == "left_only":
            status = "not in exchange file"
        elif isinstance(d["error"], str) and d["error"].startswith("not computed"):
            status = d["error"]
        elif isinstance(d["error"], str) and d["error"]:
            status = f"model error: {d['error']}"
        elif ex_ccy and ccy and ex_ccy != ccy.upper():
            if fx_to_usd and ex_ccy in fx_to_usd and ccy in fx_to_usd:
                k = float(fx_to_usd[ex_ccy]) / float(fx_to_usd[ccy])
                e_im, e_mm = e_im * k, e_mm * k
            else:
                status = "currency mismatch"
        ok = status == "ok"
        im_r = _ratio(m_im, e_im) if ok else math.nan
        mm_r = _ratio(m_mm, e_mm) if ok else math.nan
        im_l, mm_l = _log_ratio(im_r), _log_ratio(mm_r)
        outlier = bool(ok and ((not math.isnan(im_l) and abs(im_l) > threshold)
                               or (not math.isnan(mm_l) and abs(mm_l) > threshold)))
        drivers = ""
        if comps is not None and d["side"] != "right_only":
            top = component_drivers(comps, d["account"], n_drivers)
            drivers = "; ".join(f"{c.component} [{c.underlying}] {c.amount:,.6g}" for c in top.itertuples())
        rows.append({
            "account": d["account"], "currency": ccy, "model_im": m_im, "exchange_im": e_im, "im_ratio": im_r,
            "im_log_ratio": im_l, "im_diff": m_im - e_im if ok else math.nan, "model_mm": m_mm,
            "exchange_mm": e_mm, "mm_ratio": mm_r, "mm_log_ratio": mm_l, "outlier": outlier, "status": status,
            "drivers": drivers,
        })
    out = pd.DataFrame(rows, columns=COMPARE_COLUMNS)
    key = out["im_log_ratio"].abs().fillna(-1.0)
    out = out.iloc[np.argsort(-key.to_numpy(), kind="stable")].reset_index(drop=True)
    out.attrs["threshold"] = threshold
    return out


def side_by_side(
    positions: Any,
    market: Any,
    models: Sequence[str] | None = None,
    *,
    currency: str = "USD",
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same book under several models: IM per account per model, and each model's cross-vs-isolated saving.

    Parameters
    ----------
    positions : str, Path or DataFrame
        Positions table.
    market : str, Path, dict or MarketSnapshot
        Market snapshot.
    models : sequence of str, optional
        Model names or paths; default every shipped model runnable on a book
        (:func:`greeksmargin.engine.adapters.runnable_models`).
    currency : str, default "USD"
        ``"USD"``: every amount converted to USD at the snapshot's FX (one scale for the whole table);
        ``"account"``: each account's own margin currency (a ``currency`` column says which).
    options : mapping, optional
        Per model name, keyword options of its adapter (e.g. ``{"simm-2.6": {"horizon": "1d"}}``).

    Returns
    -------
    (im_table, saving_table) : tuple of DataFrame
        ``im_table``: one row per account, columns ``account``, ``currency``, then one IM column per model (NaN
        where the model could not compute the account; the reasons in ``im_table.attrs["errors"]``, a dict
        ``{model: {account: message}}``; those outside the model's domain also in ``attrs["not_computed"]``;
        each model's ``[meta] status`` in ``attrs["model_status"]``). ``saving_table``: one row per model with
        ``model``, ``methodology``, ``status`` (published / illustrative), ``currency`` (always USD),
        ``accounts`` (computed), ``failed`` (errors), ``not_computed`` (outside the model's domain), ``im``,
        ``isolated_im`` (USD totals over the computed accounts), ``saving = isolated_im - im`` and
        ``saving_pct``; ``common_accounts``, ``im_common`` and ``isolated_im_common``: the same totals over the
        accounts every model priced (``saving.attrs["common_accounts"]``; NaN when no account is priced by
        all), the only totals that compare models like with like.
    """
    from greeksmargin.book.book import Book, load_book_market_collect
    from greeksmargin.book.market import MarketSnapshot, load_market
    from greeksmargin.engine.dispatch import run_model, runnable_models
    from greeksmargin.engine.models import load_model

    if isinstance(positions, Book):  # validated once, by load_book
        book, mk = positions, positions.market
    else:  # validated once here: a malformed row raises, an account the market cannot price is set aside
        mk = market if isinstance(market, MarketSnapshot) else load_market(market)
        book = load_book_market_collect(positions, mk)
    names = list(models) if models else runnable_models()
    if currency not in ("USD", "account"):
        raise InputError(f"currency must be 'USD' or 'account', got '{currency}'", column="currency")
    accounts = list(book.accounts)
    im_table = pd.DataFrame({"account": accounts})
    errors: dict[str, dict[str, str]] = {}
    not_computed: dict[str, dict[str, str]] = {}
    model_status: dict[str, str] = {}
    saving_rows = []
    acc_ccy: dict[str, str] = {}
    usd: dict[str, tuple[pd.Series, pd.Series]] = {}  # model -> (IM, isolated IM) in USD of its good accounts
    for name in names:
        try:
            m = load_model(name)
            res = run_model(book, None, m, **dict((options or {}).get(name, {})))
        except GreeksMarginError as exc:
            errors[name] = {a: str(exc) for a in accounts}
            im_table[name] = np.nan
            saving_rows.append({"model": name, "methodology": "", "status": "", "currency": currency, "accounts": 0,
                                "failed": len(accounts), "not_computed": 0, "im": np.nan, "isolated_im": np.nan})
            continue
        a = res.accounts.copy()
        a["account"] = a["account"].astype(str)
        err = a["error"] if "error" in a.columns else pd.Series([None] * len(a))
        nc = (a["status"].astype(str) == "not_computed") if "status" in a.columns else pd.Series(False, index=a.index)
        failed = err.notna() & (err.astype(str) != "")
        bad = failed | nc
        errors[name] = dict(zip(a.loc[failed, "account"], err[failed].astype(str)))
        errors[name].update(zip(a.loc[nc, "account"], a.loc[nc, "reason"].astype(str)))
        not_computed[name] = dict(zip(a.loc[nc, "account"], a.loc[nc, "reason"].astype(str)))
        model_status[name] = m.status
        k_usd = np.array([mk.fx_to_usd(c) if isinstance(c, str) and c else 1.0 for c in a["currency"]])
        for acc_name, c in zip(a["account"], a["currency"]):
            if isinstance(c, str) and c:
                acc_ccy.setdefault(acc_name, c)
        im_ccy = a["im"].to_numpy(dtype=float)
        im = im_ccy * k_usd
        iso = a["isolated_im"].to_numpy(dtype=float) * k_usd
        shown = im if currency == "USD" else im_ccy
        im_table[name] = pd.Series(shown, index=a["account"]).reindex(accounts).to_numpy()
        good = ~bad.to_numpy() & np.isfinite(im) & np.isfinite(iso)
        tot_im, tot_iso = float(im[good].sum()), float(iso[good].sum())
        usd[m.name] = (pd.Series(im[good], index=a["account"][good]), pd.Series(iso[good], index=a["account"][good]))
        saving_rows.append({"model": m.name, "methodology": m.methodology, "status": m.status, "currency": "USD",
                            "accounts": int(good.sum()), "failed": int(len(accounts) - good.sum() - nc.sum()),
                            "not_computed": int(nc.sum()), "im": tot_im, "isolated_im": tot_iso})
    im_table.insert(1, "currency", "USD" if currency == "USD" else [acc_ccy.get(a, "") for a in accounts])
    im_table.attrs["errors"] = errors
    im_table.attrs["not_computed"] = not_computed
    im_table.attrs["model_status"] = model_status
    saving = pd.DataFrame(saving_rows, columns=["model", "methodology", "status", "currency", "accounts", "failed",
                                                "not_computed", "im", "isolated_im"])
    saving["saving"] = saving["isolated_im"] - saving["im"]
    with np.errstate(invalid="ignore", divide="ignore"):
        saving["saving_pct"] = np.where(saving["isolated_im"] > 0,
                                        100.0 * saving["saving"] / saving["isolated_im"].where(
                                            saving["isolated_im"] > 0, 1.0), np.nan)
    # totals over the accounts every model priced: the only totals that compare like with like
    common = [a for a in accounts if len(usd) == len(saving) and all(a in im_s.index for im_s, _ in usd.values())]
    saving["common_accounts"] = len(common)
    saving["im_common"] = [float(usd[m][0].reindex(common).sum()) if m in usd and common else np.nan
                           for m in saving["model"]]
    saving["isolated_im_common"] = [float(usd[m][1].reindex(common).sum()) if m in usd and common else np.nan
                                    for m in saving["model"]]
    saving.attrs["common_accounts"] = common
    return im_table, saving


def side_by_side_display(im_table: pd.DataFrame) -> pd.DataFrame:
    """The IM table for display: ``n/a (reason)`` where a model did not compute an account, ``*`` if illustrative.

    Parameters
    ----------
    im_table : DataFrame
        The first output of :func:`side_by_side` (with its ``attrs``).

    Returns
    -------
    DataFrame
        Same rows; model columns of object dtype holding the IM (float) or ``"n/a (outside the model's
        domain)"`` / ``"n/a (error)"``; an illustrative model's column is named ``"<model>*"``.
    """
    errors = im_table.attrs.get("errors", {}) or {}
    nc = im_table.attrs.get("not_computed", {}) or {}
    status = im_table.attrs.get("model_status", {}) or {}
    shown = im_table.astype(object).copy()
    for m in [c for c in im_table.columns if c not in ("account", "currency")]:
        shown[m] = [
            ("n/a (" + ("outside the model's domain" if acc in nc.get(m, {}) else "error") + ")")
            if acc in errors.get(m, {}) else v
            for acc, v in zip(im_table["account"], im_table[m])
        ]
    return shown.rename(columns={m: f"{m}*" for m, st in status.items() if st == "illustrative"})

