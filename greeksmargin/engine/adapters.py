"""Exchange methodologies on a positions book: adapters from the book to each methodology's own inputs.

:func:`greeksmargin.engine.margin.compute_margin` runs the *component* methodologies (``greeks-stress``,
``deribit-standard``, ``tims-pm``) natively. The exchange methodologies with their own rule modules take other
inputs (CRIF rows, risk arrays, a coin risk matrix, a Derive portfolio). This module converts a positions book
into those inputs, account by account, and returns the same per-account table as ``compute_margin``:

``account, im, mm, isolated_im, saving, saving_pct, currency``, one column per component, ``status``,
``reason``, ``error``.

Conventions shared by every adapter
-----------------------------------
- **Currency** of an account: as in ``compute_margin``, the coin when every position of the account is
  coin-settled (inverse) in that one coin, else USD; amounts the methodology computes in another currency are
  converted at ``market.fx_to_usd``.
- **isolated_im**: the sum, over the account's positions, of the requirement of each position margined alone
  by the same adapter (the account's currency). ``saving = isolated_im - im``.
- **Failures let the batch finish**: an account that cannot be computed gets a row with ``error`` set and NaN
  figures (``status`` ``error``); the others are computed.
- **Domain**: an account holding any position outside the model's ``[domain]`` (underlyings, kinds,
  settlement; :class:`greeksmargin.engine.models.Domain`) is not computed: NaN figures, ``status`` ``not_computed``
  and a ``reason`` naming the positions and the rule. Never 0, never margined on part of its positions.
- **IM is a requirement against equity** (cash plus the mark-to-market of the positions), never negative.

Per methodology (the choices made where the book and the methodology do not meet are listed here)
-------------------------------------------------------------------------------------------------
``simm`` (:func:`simm_accounts`)
    The account's CRIF from :func:`greeksmargin.risk.aggregation.to_crif` (equity delta per 1 %, vega per vol point
    by SIMM tenor; crypto in the Residual bucket), then :func:`greeksmargin.methodologies.simm.simm_margin` at the
    horizon ``horizon`` (``"10d"`` by default). USD; SIMM has one requirement, so ``mm = im``. Coin-settled
    positions enter with their USD sensitivities. Components: ``delta``, ``vega``, ``curvature`` (sum over
    risk classes), ``simm_<horizon>``.
``span`` (:func:`span_accounts`)
    One combined commodity per (account, underlying). Risk arrays of 16 scenarios are generated for every
    position by full revaluation with :mod:`greeksmargin.pricing` (Black-76 on each expiry's forward; every
    forward, the spot and the perpetual move by the same relative move ``price move / spot``; vol moved by
    +-VSR, floored at 1e-4; scenarios 15-16 at ``+-extreme_multiple x PSR`` counted at ``extreme_weight``) and
    aggregated with :func:`greeksmargin.methodologies.span.scenario_losses`; the spread charge is
    :func:`greeksmargin.methodologies.span.spread_charge` on composite deltas per expiry month (perpetual and spot
    first); a composite delta is in futures equivalents of the unit's future multiplier (else the most common
    multiplier of the unit). An option declared American (``exercise``) is revalued with its American value
    (:mod:`greeksmargin.risk.exercise`, Barone-Adesi-Whaley on the same moves; exchanges' SPAN risk arrays
    price American options with an American model), its composite delta ``dV/dF`` at a fixed carry. Scan
    ranges come from the span model's ``[products.<UNDERLYING>]`` table (merged
    over ``[defaults]``; ``product_map`` maps an underlying to another table name; ``psr_fraction`` gives the
    PSR as a fraction of the spot); an underlying without a product table is a :class:`ModelError` naming
    ``products.<UNDERLYING>`` (in the account's ``error``). The ``psr_source`` column says ``illustrative`` when
    the table is marked ``illustrative = true`` (not exchange figures), else ``model``. The delivery charge is 0.
    All values in USD: a coin-settled option is valued at its USD price ``C_usd`` (coin value x index) and an inverse
    future / perpetual of ``Q`` coin gains ``Q S m`` USD for a move ``m``, i.e. coin-settled contracts are
    margined like linear contracts of the same notional (the coin-numeraire effect is out of scope).
    ``im = mm = max(scan + spread + delivery - credit, short option minimum)``: the SPAN risk requirement,
    compared with equity that includes the options' value; ``net_option_value`` and ``requirement_net_nov``
    (``im - NOV``, what a SPAN statement shows against cash) are components.
``deribit_pm`` (:func:`deribit_pm_accounts`)
    The risk matrix of :func:`greeksmargin.methodologies.deribit_pm.deribit_pm_margin` per settlement coin, on the
    account's coin-settled (inverse) futures, perpetuals and options (options revalued by the rule module);
    parameters from the model's ``[btc]`` / ``[eth]`` tables. The shipped model's domain is coin-settled BTC /
    ETH options, futures and perpetuals: an account holding a linear (USD/USDC-settled) position, spot or
    another underlying is ``not_computed`` (Deribit margins its linear books separately). With a model
    without ``[domain]`` such positions are left out, counted in ``left_out_positions``, and an account with
    nothing coin-settled gets an error row. A multi-coin account is
    the plain sum of its coins' requirements in USD (``correlation_contingency`` 0 in the model).
``derive_pm2`` (:func:`derive_pm2_accounts`)
    One Derive portfolio per (account, underlying), built by :func:`derive_portfolio`: options at the
    market's vols with ``amount = quantity x multiplier``; every expiry's forward, rate and full confidences;
    perpetuals and futures folded into the single perp line (size summed, price = perpetual mark); long spot
    as risk-cancelling collateral without haircut, short spot folded into the perp. Derive options are
    USD-settled and European, as Derive lists them: an option declared American enters as the European option of
    the same terms (the methodology is defined on European prices; Deribit PM's domain is coin-settled, where
    American is refused at the boundary). A coin-settled option of size ``Q`` pays ``Q max(S_T - K, 0) / S_T``
    coin, worth ``Q max(S_T - K, 0)`` USD at expiry, so it enters as a USD option of the same size; an inverse
    future or perpetual of ``Q`` coin (USD P&L ``Q S m``) enters the perp line with size ``Q`` (the basis of
    dated futures against the perpetual is not modelled). ``cash = 0`` and ``stable_price = 1``. The rule module
    returns *health* figures (``cash + MtM + factor x worst loss - contingencies``); the requirement against equity is
    ``im = MtM - IM health``, ``mm = MtM - MM health`` (USD, floored at 0). The same parameters apply to every
    underlying of the model's domain (BTC, ETH in the shipped file: an account holding SPX is not computed).
``cboe-strategy`` (:func:`strategy_accounts`)
    Per (account, underlying): options (premium = the pricing layer's price, the American value for an option
    declared American, rounded to 1e-4 USD; days to
    expiry = time to expiry x 365; one contract multiplier per underlying) and stock (``kind = spot``, shares =
    quantity x multiplier) decomposed by the exact optimal pairing of :mod:`greeksmargin.methodologies.strategy`.
    Index type and leveraged-ETF factor from the model's ``[underlyings]`` table (default equity, 1). USD;
    ``im`` the Reg T / Cboe initial requirement, ``mm`` the maintenance requirement (FINRA 4210(c) on stock: 25%
    long, 30% short; options as initial), both including the proceeds of the short sales.
    Components: ``margin_requirement``, ``maintenance_requirement``, ``short_proceeds``,
    ``deposit_excl_proceeds``, ``greedy_margin_requirement`` (the broker heuristic's figure),
    ``cash_requirement`` (NaN when a short stock position makes a cash account impossible). Futures,
    perpetuals and coin-settled positions are outside the model's domain: the account's error names them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from greeksmargin.book.book import book_of
from greeksmargin.errors import GreeksMarginError, InputError, ModelError

__all__ = [
    "ACCOUNT_COLUMNS",
    "account_currency",
    "derive_pm2_accounts",
    "derive_portfolio",
    "deribit_pm_accounts",
    "simm_accounts",
    "span_accounts",
    "span_unit",
    "strategy_accounts",
    "strategy_unit",
]

#: first columns of every adapter's table
ACCOUNT_COLUMNS = ["account", "im", "mm", "isolated_im", "saving", "saving_pct", "currency"]


# ============================================================================================ helpers
def account_currency(priced: pd.DataFrame) -> str:
    """Margin currency of one account's priced positions: the coin if all are inverse in one coin, else USD."""
    if len(priced) and (priced["settlement"] == "inverse").all():
        coins = pd.unique(priced["margin_currency"])
        if len(coins) == 1:
            return str(coins[0])
    return "USD"


def _fx(market: Any, from_ccy: str, to_ccy: str) -> float:
    if from_ccy == to_ccy:
        return 1.0
    return float(market.fx_to_usd(from_ccy)) / float(market.fx_to_usd(to_ccy))


def _model_params(model: Any) -> tuple[Any, Any]:
    """(Model or None, params) from a model name/path, a loaded Model or bare params."""
    from greeksmargin.engine.models import Model, load_model

    if isinstance(model, Model):
        return model, model.params
    if isinstance(model, (str,)) or hasattr(model, "__fspath__"):
        m = load_model(model)
        return m, m.params
    return None, model


def _model_tables(model: Any, needs: str) -> Mapping[str, Any]:
    """The TOML tables of a model (name, path or loaded Model), or ``model`` itself when it is a dict."""
    m, raw = _model_params(model)
    if m is not None:
        raw = m.raw or m.params
    if not isinstance(raw, Mapping):
        raise ModelError(f"the {needs}")
    return raw


def _price_book(positions: pd.DataFrame, market: Any) -> tuple[pd.DataFrame, dict[str, str]]:
    """Price the book; accounts that cannot be priced are returned with their error message."""
    from greeksmargin.risk.greeks import price_positions

    try:
        return price_positions(positions, market), {}
    except GreeksMarginError:
        pass
    parts, bad = [], {}
    for acc, sub in positions.groupby("account", sort=False):
        try:
            parts.append(price_positions(sub, market))
        except GreeksMarginError as exc:
            bad[str(acc)] = str(exc)
    priced = pd.concat(parts) if parts else price_positions(positions.iloc[:0], market)
    return priced, bad


@dataclass
class _AccountFigures:
    """What a per-account core returns: figures in ``currency`` and tidy per-underlying component rows."""

    im: float
    mm: float
    currency: str
    components: dict[str, float]
    rows: list[dict[str, Any]]


Core = Callable[[pd.DataFrame], _AccountFigures]


def _run(
    positions: pd.DataFrame,
    market: Any,
    core: Core,
    methodology: str,
    *,
    isolated: bool = True,
    covered: Callable[[pd.DataFrame], pd.Series] | None = None,
    model: Any = None,
) -> pd.DataFrame:
    """Apply ``core`` to every account (and to every position alone for the isolated figure).

    Accounts holding a position outside ``model``'s domain are not computed: NaN figures, ``status``
    ``not_computed`` and the ``reason`` (naming the positions and the rule); never 0.
    """
    accounts = list(pd.unique(positions["account"].astype(str)))
    m = _model_params(model)[0] if model is not None else None
    outside = m.domain.not_computed(positions, m.name) if m is not None else {}
    own = book_of(positions, market)  # the positions of a validated Book: priced from its arrays
    if outside:
        from greeksmargin.book.positions import account_currency as _ccy_rule

        nc_ccy = _ccy_rule(positions[positions["account"].astype(str).isin(list(outside))], market)
        keep = ~positions["account"].astype(str).isin(list(outside)).to_numpy()
        own = own.subset(keep) if own is not None else None  # kept alive for the pricing below
        positions = positions[keep] if own is None else own.positions
    priced, bad = _price_book(positions, market)
    rows: list[dict[str, Any]] = []
    tidy: list[dict[str, Any]] = []
    for acc in sorted(accounts):
        if acc in outside:
            rows.append({"account": acc, "currency": str(nc_ccy.get(acc, "USD")), "status": "not_computed",
                         "reason": outside[acc], "error": None})
            continue
        if acc in bad:
            rows.append({"account": acc, "error": bad[acc], "status": "error", "reason": bad[acc]})
            continue
        sub = priced[priced["account"].astype(str) == acc]
        ccy = account_currency(sub)
        try:
            f = core(sub)
            k = _fx(market, f.currency, ccy)
            row: dict[str, Any] = {"account": acc, "im": max(f.im * k, 0.0), "mm": max(f.mm * k, 0.0),
                                   "currency": ccy}
            for name, v in f.components.items():
                row[name] = v * k if name not in _UNITLESS else v
            iso = np.nan
            if isolated:
                use = sub if covered is None else sub[covered(sub)]
                iso = 0.0
                for label in use.index:
                    g = core(use.loc[[label]])
                    iso += max(g.im, 0.0) * _fx(market, g.currency, ccy)
            row["isolated_im"] = iso
            row["error"] = None
            row["status"], row["reason"] = "computed", None
            rows.append(row)
            for r in f.rows:
                amount = float(r["amount"]) * (k if r.get("component") not in _UNITLESS else 1.0)
                tidy.append({"account": acc, "underlying": r.get("underlying", "ALL"),
                             "rule": r.get("rule", methodology), "component": r["component"],
                             "amount": amount, "currency": ccy})
            for name in ("im", "mm", "isolated_im"):
                tidy.append({"account": acc, "underlying": "ALL", "rule": "aggregation", "component": name,
                             "amount": row[name], "currency": ccy})
        except GreeksMarginError as exc:
            rows.append({"account": acc, "currency": ccy, "error": str(exc), "status": "error", "reason": str(exc)})
        except (ValueError, ZeroDivisionError, FloatingPointError) as exc:
            msg = f"{type(exc).__name__}: {exc}"
            rows.append({"account": acc, "currency": ccy, "error": msg, "status": "error", "reason": msg})
    df = pd.DataFrame(rows)
    for c in ACCOUNT_COLUMNS + _TAIL:
        if c not in df.columns:
            df[c] = np.nan if c not in ("account", "currency", *_TAIL) else None
    df["currency"] = df["currency"].fillna("")
    df["error"] = df["error"].astype(object).where(df["error"].notna(), None)
    iso = df["isolated_im"].astype(float)
    im = df["im"].astype(float)
    saving = iso - im
    df["saving"] = saving.where(saving.abs() > 1e-12 * iso.abs(), 0.0).where(iso.notna() & im.notna())
    with np.errstate(invalid="ignore", divide="ignore"):
        df["saving_pct"] = np.where(iso > 0, 100.0 * df["saving"] / iso.where(iso > 0, 1.0), 0.0)
    df.loc[im.isna() | iso.isna(), "saving_pct"] = np.nan
    df["reason"] = df["reason"].astype(object).where(df["reason"].notna(), None)
    comp_cols = [c for c in df.columns if c not in ACCOUNT_COLUMNS and c not in _TAIL]
    df = df[ACCOUNT_COLUMNS + comp_cols + _TAIL].reset_index(drop=True)
    df.attrs["components"] = pd.DataFrame(
        tidy, columns=["account", "underlying", "rule", "component", "amount", "currency"])
    df.attrs["methodology"] = methodology
    return df


#: last columns of every adapter's table: computed / error / not_computed, why, and the error (None if none)
_TAIL = ["status", "reason", "error"]

#: component columns that are counts or flags, never converted between currencies
_UNITLESS = {"left_out_positions", "covered_positions", "worst_scenario"}


def _finite(x: float, what: str) -> float:
    if not math.isfinite(x):
        raise ValueError(f"{what} is not finite")
    return float(x)


# ============================================================================================== SIMM
def simm_accounts(
    positions: pd.DataFrame,
    market: Any,
    model: Any = "simm-2.6",
    *,
    horizon: str = "10d",
    isolated: bool = True,
) -> pd.DataFrame:
    """ISDA SIMM of every account, from the account's CRIF (see the module docstring).

    Parameters
    ----------
    positions : DataFrame
        Validated positions (:func:`greeksmargin.book.positions.load_positions`).
    market : MarketSnapshot
        Market snapshot.
    model : str, Model or SimmParams, default "simm-2.6"
        A SIMM model (name, path, loaded :class:`~greeksmargin.engine.models.Model`) or its parameters.
    horizon : {"10d", "1d"}, default "10d"
        SIMM calibration horizon.
    isolated : bool, default True
        Compute ``isolated_im`` (one SIMM per position).

    Returns
    -------
    DataFrame
        One row per account: ``account, im, mm (= im), isolated_im, saving, saving_pct, currency, delta, vega,
        curvature, error``; tidy component rows in ``.attrs["components"]``. Amounts in the account's
        currency (SIMM computes in USD).
    """
    from greeksmargin.methodologies.simm import parse_simm_params, simm_margin
    from greeksmargin.risk.aggregation import to_crif

    _, raw = _model_params(model)
    params = parse_simm_params(raw)

    def core(sub: pd.DataFrame) -> _AccountFigures:
        crif = to_crif(sub)
        if crif.empty:
            return _AccountFigures(0.0, 0.0, "USD", {"delta": 0.0, "vega": 0.0, "curvature": 0.0}, [])
        res = simm_margin(crif, params, horizon)
        b = res.breakdown
        comps = {m.lower(): float(b.loc[(b["measure"] == m) & (b["bucket"] == "All"), "amount"].sum())
                 for m in ("Delta", "Vega", "Curvature")}
        rows = [{"underlying": "ALL" if r.bucket == "All" else f"bucket {r.bucket}",
                 "rule": "simm" if r.bucket == "All" else "detail",
                 "component": f"{r.risk_class}_{r.measure}".lower(), "amount": float(r.amount)}
                for r in b.itertuples() if r.measure != "All"]
        total = _finite(res.total, "SIMM")
        return _AccountFigures(total, total, "USD", comps, rows)

    return _run(positions, market, core, "simm", isolated=isolated, model=model)


# ============================================================================================== SPAN
def _span_params_for(raw: Mapping[str, Any], underlying: str, spot: float,
                     product_map: Mapping[str, str] | None = None) -> tuple[Any, str]:
    """SpanParams of an underlying from the model's product table, and ``"illustrative"`` or ``"model"``."""
    from greeksmargin.methodologies.span import product_params

    product = (product_map or {}).get(underlying, underlying)
    params = product_params(raw, product, spot)
    return params, "illustrative" if raw["products"][product].get("illustrative", False) else "model"


def span_unit(priced: pd.DataFrame, params: Any, spot: float) -> dict[str, Any]:
    """SPAN requirement of one combined commodity (one underlying's priced positions), in USD.

    Parameters
    ----------
    priced : DataFrame
        Priced positions of one underlying (:func:`greeksmargin.risk.greeks.price_positions`).
    params : SpanParams
        Scan ranges and charges (PSR in price units of the underlying).
    spot : float
        Spot of the underlying (USD), the base of the relative move ``PSR / spot``.

    Returns
    -------
    dict
        ``requirement`` (USD, ``max(scan + spread + delivery - credit, SOM)``), ``scan_risk``,
        ``spread_charge``, ``short_option_minimum``, ``net_option_value``, ``scenario_losses`` (ndarray of
        shape (16,)), ``risk_arrays`` (contract -> ndarray of shape (16,), loss positive, per unit of size),
        ``composite_delta`` (month -> futures equivalents).
    """
    from greeksmargin.methodologies.span import scan_risk_detail, scenario_grid, spread_charge
    from greeksmargin.pricing import black76, black76_price
    from greeksmargin.risk.exercise import american_forward_price

    dp, dv, extreme = scenario_grid(params.psr, params.vsr, params.extreme_multiple)
    m = np.maximum(dp / spot, -1.0)  # relative move of every forward / the spot (prices stay >= 0)
    arrays: dict[str, NDArray[np.float64]] = {}
    qty: dict[str, float] = {}
    deltas: dict[str, float] = {}
    nov = 0.0
    shorts = 0.0
    futs = priced[priced["kind"] == "future"]
    contract_size = float(futs["multiplier"].iloc[0]) if len(futs) else float(priced["multiplier"].mode().iloc[0])
    for label, r in priced.iterrows():
        kind = str(r["kind"])
        size = float(r["size"])
        f0 = float(r["forward"])
        if kind == "option":
            t = float(r["time_to_expiry"])
            vol = float(r["vol"])
            rate = float(r["rate"])
            is_call = bool(r["is_call"])
            n = m.size
            v0 = float(r["price"])
            f1 = np.maximum(f0 * (1.0 + m), 1e-12 * f0)
            if r.get("exercise") == "american":  # its American value on the same moves (greeksmargin.risk.exercise)
                ratio = f0 / float(r["spot"])
                v0 = float(american_forward_price(is_call, f0, float(r["strike"]), t, vol, rate, ratio))
                v1 = american_forward_price(np.full(n, is_call), f1, float(r["strike"]), t,
                                            np.maximum(vol + dv, 1e-4), rate, ratio)
                d = float(r["delta"]) / ratio  # dV/dF at a fixed carry: futures-equivalent delta
            else:
                v1 = black76_price(np.full(n, is_call), f1, np.full(n, float(r["strike"])), np.full(n, t),
                                   np.maximum(vol + dv, 1e-4), np.full(n, rate))
                d = float(np.asarray(black76("call" if is_call else "put", f0, float(r["strike"]), t, vol, rate).delta))
            pnl = np.asarray(v1, dtype=float) - v0
            nov += size * v0
            shorts += max(-float(r["quantity"]), 0.0)
            month = pd.Timestamp(r["expiry"]).strftime("%Y-%m")
        else:
            pnl = float(r["price"]) * m  # future: its forward; perpetual: its mark; spot: the spot
            d = 1.0
            month = pd.Timestamp(r["expiry"]).strftime("%Y-%m") if kind == "future" else "0000-00 (spot/perp)"
        pnl = np.where(extreme, pnl * params.extreme_weight, pnl)
        key = f"{label}:{r['instrument']}"
        arrays[key] = -pnl + 0.0
        qty[key] = size
        deltas[month] = deltas.get(month, 0.0) + size * d / contract_size
    if not arrays:
        zero = np.zeros(16)
        return {"requirement": 0.0, "scan_risk": 0.0, "spread_charge": 0.0, "short_option_minimum": 0.0,
                "net_option_value": 0.0, "scenario_losses": zero, "risk_arrays": {}, "composite_delta": {},
                "worst_scenario": 0}
    det = scan_risk_detail(arrays, qty, convention="loss_positive", extreme_weights_applied=True)
    months = sorted(deltas)
    spread = spread_charge({mo: deltas[mo] for mo in months}, params.spread_rate, params.spread_rates)
    som = shorts * params.short_option_minimum
    delivery = 0.0
    req = max(det.scan_risk + spread + delivery - params.inter_commodity_credit, som)
    return {"requirement": float(req), "scan_risk": det.scan_risk, "spread_charge": float(spread),
            "short_option_minimum": float(som), "net_option_value": float(nov),
            "scenario_losses": det.scenario_losses, "risk_arrays": arrays, "composite_delta": deltas,
            "worst_scenario": det.worst_scenario}


def span_accounts(
    positions: pd.DataFrame,
    market: Any,
    model: Any = "span",
    *,
    isolated: bool = True,
    product_map: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """SPAN of every account: generated risk arrays per (account, underlying) (see the module docstring).

    Parameters
    ----------
    positions : DataFrame
        Validated positions.
    market : MarketSnapshot
        Market snapshot.
    model : str, Model or dict, default "span"
        The span model (its ``[defaults]`` and ``[products.<UNDERLYING>]`` tables) or the raw dict.
    isolated : bool, default True
        Compute ``isolated_im`` (one SPAN requirement per position).
    product_map : mapping, optional
        Underlying -> product table name of the model (default: the underlying's own name), e.g.
        ``{"SPX": "ES"}``.

    Returns
    -------
    DataFrame
        ``account, im, mm (= im), isolated_im, saving, saving_pct, currency, scan_risk, spread_charge,
        short_option_minimum, net_option_value, requirement_net_nov, psr_source, error``; tidy rows per
        underlying in ``.attrs["components"]``.
    """
    raw = _model_tables(model, "span adapter needs the span model's tables ([defaults], [products.*])")
    sources: dict[str, set[str]] = {}

    def core(sub: pd.DataFrame) -> _AccountFigures:
        tot = {"scan_risk": 0.0, "spread_charge": 0.0, "short_option_minimum": 0.0, "net_option_value": 0.0}
        req = 0.0
        rows: list[dict[str, Any]] = []
        src: set[str] = set()
        for und, grp in sub.groupby("underlying", sort=True):
            spot = float(market.spot(str(und)))
            params, source = _span_params_for(raw, str(und), spot, product_map)
            src.add(source)
            u = span_unit(grp, params, spot)
            req += u["requirement"]
            for k in tot:
                tot[k] += u[k]
                rows.append({"underlying": und, "rule": "span", "component": k, "amount": u[k]})
            rows.append({"underlying": und, "rule": "combination", "component": "requirement",
                         "amount": u["requirement"]})
        comps = dict(tot)
        comps["requirement_net_nov"] = req - tot["net_option_value"]
        sources[str(sub["account"].iloc[0]) if len(sub) else ""] = src
        return _AccountFigures(_finite(req, "SPAN requirement"), req, "USD", comps, rows)

    df = _run(positions, market, core, "span", isolated=isolated, model=model)
    df.insert(len(df.columns) - len(_TAIL), "psr_source",
              ["+".join(sorted(sources.get(a, set()))) for a in df["account"]])
    return df


# ======================================================================================== Deribit PM
def _deribit_covered(sub: pd.DataFrame) -> pd.Series:
    """Positions the risk matrix covers: coin-settled (inverse) options, futures and perpetuals."""
    return (sub["settlement"] == "inverse") & sub["kind"].isin(["option", "future", "perpetual"])


def _deribit_rows(sub: pd.DataFrame) -> pd.DataFrame:
    """Risk-matrix positions of the coin-settled part of ``sub`` (rule-module fields)."""
    inv = sub[_deribit_covered(sub)]
    expiry_ms = [float(pd.Timestamp(e).value // 1_000_000) if pd.notna(e) else np.nan for e in inv["expiry"]]
    return pd.DataFrame({
        "instrument": inv["instrument"].astype(str).to_numpy(),
        "kind": inv["kind"].to_numpy(),
        "size": inv["size"].to_numpy(dtype=float),
        "mark_price": np.where(inv["kind"] == "option", inv["value_ccy"] / inv["size"].where(inv["size"] != 0, 1.0),
                               inv["forward"]),
        "expiry_ms": expiry_ms,
        "strike": inv["strike"].to_numpy(dtype=float),
        "option_type": inv["option_type"].to_numpy(),
        "vol": inv["vol"].to_numpy(dtype=float),
        "underlying_price": inv["forward"].to_numpy(dtype=float),
        "coin": inv["margin_currency"].to_numpy(),
    }, index=inv.index)


def deribit_pm_accounts(
    positions: pd.DataFrame,
    market: Any,
    model: Any = "deribit-pm",
    *,
    isolated: bool = True,
) -> pd.DataFrame:
    """Deribit portfolio margin (risk matrix) of every account's coin-settled positions.

    Parameters
    ----------
    positions : DataFrame
        Validated positions.
    market : MarketSnapshot
        Market snapshot (index = spot; options at the market's vols and forwards).
    model : str, Model or dict, default "deribit-pm"
        The deribit-pm model (tables ``[btc]``, ``[eth]``, ... of exchange parameter names) or the raw dict.
    isolated : bool, default True
        Compute ``isolated_im`` (one risk matrix per covered position).

    Returns
    -------
    DataFrame
        ``account, im, mm, isolated_im, saving, saving_pct, currency, worst_case, roll_shock, delta_shock,
        covered_positions, left_out_positions, error``; coin amounts per coin in ``.attrs["components"]``.
        Linear positions and spot are left out (see the module docstring).
    """
    from greeksmargin.methodologies.deribit_pm import DeribitPMParams, deribit_pm_margin

    raw = _model_tables(model, "deribit-pm adapter needs the model's per-currency tables ([btc], [eth])")
    ts_ms = float(pd.Timestamp(market.valuation_time).value // 1_000_000)
    cache: dict[str, Any] = {}

    def params_for(coin: str) -> Any:
        if coin not in cache:
            key = coin.lower()
            if key not in raw:
                raise ModelError(f"no Deribit PM parameter set for currency '{coin}'", key=key)
            cache[coin] = DeribitPMParams.from_dict(raw[key], strict=True)
        return cache[coin]

    def core(sub: pd.DataFrame) -> _AccountFigures:
        rows_in = _deribit_rows(sub)
        left_out = int(len(sub) - len(rows_in))
        if rows_in.empty:
            raise InputError("no coin-settled futures, perpetuals or options: Deribit PM (risk matrix) covers "
                             f"coin-settled positions only ({left_out} linear/spot positions left out)")
        coins = sorted(pd.unique(rows_in["coin"]))
        ccy = str(coins[0]) if len(coins) == 1 else "USD"
        im = mm = 0.0
        comps = {"worst_case": 0.0, "roll_shock": 0.0, "delta_shock": 0.0}
        rows: list[dict[str, Any]] = []
        for coin in coins:
            part = rows_in[rows_in["coin"] == coin].drop(columns="coin")
            und = str(sub.loc[part.index, "underlying"].iloc[0])
            res = deribit_pm_margin(part, float(market.spot(und)), params_for(coin), timestamp_ms=ts_ms)
            k = _fx(market, coin, ccy)
            im += res.initial_margin * k
            mm += res.maintenance_margin * k
            for name in comps:
                comps[name] += getattr(res, name) * k
            for name in ("worst_case", "roll_shock", "delta_shock", "risk_matrix_margin", "maintenance_margin"):
                rows.append({"underlying": und, "component": name, "amount": getattr(res, name) * k,
                             "rule": "combination" if name in ("risk_matrix_margin", "maintenance_margin")
                             else "deribit_pm"})
        comps["covered_positions"] = float(len(rows_in))
        comps["left_out_positions"] = float(left_out)
        return _AccountFigures(_finite(im, "risk matrix margin"), mm, ccy, comps, rows)

    return _run(positions, market, core, "deribit_pm", isolated=isolated, covered=_deribit_covered, model=model)


# ======================================================================================= Derive PM2
def derive_portfolio(priced: pd.DataFrame, market: Any, underlying: str) -> dict[str, Any]:
    """A Derive PM2 portfolio (validation case format) from one underlying's priced positions.

    Parameters
    ----------
    priced : DataFrame
        Priced positions of one account and one underlying.
    market : MarketSnapshot
        Market snapshot (spot, perpetual mark, forwards, rates).
    underlying : str
        The underlying.

    Returns
    -------
    dict
        ``spot, spot_confidence, cash, stable_price, stable_confidence, perp{size, price, confidence,
        unrealised_pnl, unrealised_funding}, collaterals[], options[], forwards[]`` (see the module docstring for
        the conversions).
    """
    spot = float(market.spot(underlying))
    perp_price = float(market.perpetual_mark(underlying))
    opts = priced[priced["kind"] == "option"]
    delta_one = priced[priced["kind"].isin(["future", "perpetual"])]
    spot_pos = priced[priced["kind"] == "spot"]
    perp_size = float(delta_one["size"].sum())
    collaterals = []
    long_spot = float(spot_pos.loc[spot_pos["size"] > 0, "size"].sum())
    perp_size += float(spot_pos.loc[spot_pos["size"] < 0, "size"].sum())
    if long_spot > 0:
        collaterals.append({"amount": long_spot, "price": spot, "confidence": 1.0, "mm_haircut": 0.0,
                            "im_haircut": 0.0, "risk_cancelling": True, "name": underlying})
    options = []
    forwards: dict[int, dict[str, Any]] = {}
    for _, r in opts.iterrows():
        secs = int(round(float(r["time_to_expiry"]) * 365.0 * 86400.0))
        options.append({"seconds_to_expiry": secs, "strike": float(r["strike"]), "is_call": bool(r["is_call"]),
                        "amount": float(r["size"]), "vol": float(r["vol"])})
        if secs not in forwards:
            forwards[secs] = {"seconds_to_expiry": secs, "forward": float(r["forward"]), "forward_confidence": 1.0,
                              "rate": float(r["rate"]), "rate_confidence": 1.0, "vol_confidence": 1.0}
    return {
        "spot": spot, "spot_confidence": 1.0, "cash": 0.0, "stable_price": 1.0, "stable_confidence": 1.0,
        "perp": {"size": perp_size, "price": perp_price if perp_size else 0.0, "confidence": 1.0 if perp_size else 0.0,
                 "unrealised_pnl": 0.0, "unrealised_funding": 0.0},
        "collaterals": collaterals, "options": options, "forwards": sorted(forwards.values(),
                                                                           key=lambda f: f["seconds_to_expiry"]),
    }


def _derive_params(model: Any) -> Any:
    """PM2Params from a model name/path/Model, a parameters dict (case layout) or PM2Params."""
    from greeksmargin.methodologies.derive_pm2 import PM2Params, params_from_model

    m, raw = _model_params(model)
    if isinstance(raw, PM2Params):
        return raw
    if m is not None:
        raw = m.raw
    if isinstance(raw, Mapping):
        return params_from_model(raw)
    raise ModelError("the derive-pm2 adapter needs a derive-pm2 model or its parameters")


def derive_pm2_accounts(
    positions: pd.DataFrame,
    market: Any,
    model: Any = "derive-pm2",
    *,
    isolated: bool = True,
) -> pd.DataFrame:
    """Derive (Lyra v2) PM2 requirement of every account: one portfolio per underlying (module docstring).

    Parameters
    ----------
    positions : DataFrame
        Validated positions.
    market : MarketSnapshot
        Market snapshot.
    model : str, Model or params, default "derive-pm2"
        The derive-pm2 model or its parameters (validation-case ``parameters`` layout).
    isolated : bool, default True
        Compute ``isolated_im`` (one portfolio per position).

    Returns
    -------
    DataFrame
        ``account, im, mm, isolated_im, saving, saving_pct, currency, option_mtm, worst_loss, contingencies,
        error``; amounts USD (converted for coin accounts).
    """
    from greeksmargin.methodologies.derive_pm2 import derive_pm2_margin

    params = _derive_params(model)

    def core(sub: pd.DataFrame) -> _AccountFigures:
        im = mm = 0.0
        comps = {"option_mtm": 0.0, "im_health": 0.0, "mm_health": 0.0}
        rows: list[dict[str, Any]] = []
        for und, grp in sub.groupby("underlying", sort=True):
            pf = derive_portfolio(grp, market, str(und))
            res = derive_pm2_margin(pf, params)
            mtm = float(res.portfolio_mtm)
            im_h, mm_h = float(res.im), float(res.mm)
            im += max(mtm - im_h, 0.0)
            mm += max(mtm - mm_h, 0.0)
            comps["option_mtm"] += float(res.option_mtm)
            comps["im_health"] += im_h
            comps["mm_health"] += mm_h
            for k, v in res.summary().items():
                rule = "combination" if k in ("im", "mm", "option_mtm", "portfolio_mtm") else "derive_pm2"
                rows.append({"underlying": und, "rule": rule, "component": str(k), "amount": float(v)})
        return _AccountFigures(_finite(im, "PM2 IM"), mm, "USD", comps, rows)

    return _run(positions, market, core, "derive_pm2", isolated=isolated, model=model)


# ============================================================================== Cboe strategy-based margin
def _strategy_class(raw: Mapping[str, Any], underlying: str) -> tuple[str, float]:
    """(index type, leveraged-ETF factor) of an underlying from the model's ``[underlyings]`` table."""
    tab = raw.get("underlyings", {}) if isinstance(raw.get("underlyings"), Mapping) else {}
    types = tab.get("index_type", {}) if isinstance(tab.get("index_type"), Mapping) else {}
    levs = tab.get("leverage_factor", {}) if isinstance(tab.get("leverage_factor"), Mapping) else {}
    return str(types.get(underlying, tab.get("default_index_type", "equity"))), float(levs.get(underlying, 1.0))


def strategy_unit(priced: pd.DataFrame, raw: Mapping[str, Any], spot: float, underlying: str) -> dict[str, Any]:
    """Strategy-based (Reg T) requirement of one underlying's priced positions, USD.

    Options (``multiplier`` shares per contract, one multiplier per underlying) and stock (``kind = spot``,
    quantity in shares); premiums are the pricing layer's prices. Positions of other kinds or coin-settled
    ones are outside the model's domain: an :class:`InputError` naming them.

    Returns
    -------
    dict
        ``margin_requirement``, ``greedy_margin_requirement``, ``cash_requirement`` (NaN with ``cash_reason``
        when a cash account cannot hold the book), ``strategies`` (list of str).
    """
    import dataclasses

    from greeksmargin.methodologies.strategy import Leg, Underlying, parse_strategy_params, strategy_margin

    bad = priced[~priced["kind"].isin(["option", "spot"]) | (priced["settlement"] != "linear")]
    if len(bad):
        raise InputError(f"cboe-strategy margins linear options and stock only (domain kinds option, spot; "
                         f"settlement linear); outside it: {', '.join(map(str, bad['instrument']))}",
                         column="kind")
    params = parse_strategy_params(raw)
    opts = priced[priced["kind"] == "option"]
    mults = sorted(set(opts["multiplier"].astype(float)))
    if len(mults) > 1:
        raise InputError(f"underlying {underlying}: options with different multipliers {mults} cannot be paired",
                         column="multiplier")
    if mults:
        params = dataclasses.replace(params, multiplier=Decimal(repr(mults[0])))
    index_type, lev = _strategy_class(raw, underlying)
    und = Underlying.of(spot, index_type, lev)
    legs = []
    for r in priced.itertuples(index=False):
        if r.kind == "option":
            legs.append(Leg.option(r.option_type, r.strike, round(float(r.price), 4), r.quantity,
                                   max(0.0, float(r.time_to_expiry) * 365.0)))
        else:
            legs.append(Leg.stock(float(r.quantity) * float(r.multiplier), float(r.price)))
    opt = strategy_margin(legs, und, params, method="optimal")
    greedy = strategy_margin(legs, und, params, method="greedy")
    return {
        "margin_requirement": float(opt.margin_requirement),
        "maintenance_requirement": float(opt.maintenance_requirement),
        "short_proceeds": float(opt.short_proceeds),
        "deposit_excl_proceeds": float(opt.deposit_excl_proceeds),
        "greedy_margin_requirement": float(greedy.margin_requirement),
        "cash_requirement": math.nan if opt.cash_requirement is None else float(opt.cash_requirement),
        "cash_reason": opt.cash_reason,
        "strategies": [f"{ln.strategy} x{ln.units}" for ln in opt.lines],
    }


def strategy_accounts(
    positions: pd.DataFrame,
    market: Any,
    model: Any = "cboe-strategy",
    *,
    isolated: bool = True,
) -> pd.DataFrame:
    """Strategy-based (Reg T, Cboe Margin Manual / FINRA 4210(f)(2)) margin of every account, per underlying.

    Each underlying's options and stock are decomposed into strategies by the exact integer program of
    :func:`greeksmargin.methodologies.strategy.decompose_optimal`; ``im`` = the sum of the requirements, ``mm`` the same
    with FINRA 4210(c) maintenance on stock; both include the proceeds of the short sales
    (``short_proceeds``; ``deposit_excl_proceeds`` = im - proceeds).

    Parameters
    ----------
    positions : DataFrame
        Validated positions (options with their contract multiplier, e.g. 100; stock as ``kind = spot``).
    market : MarketSnapshot
        Market snapshot (spot of each underlying; option premiums from the pricing layer).
    model : str, Model or dict, default "cboe-strategy"
        The strategy model (its ``[parameters]`` and ``[underlyings]`` tables) or the raw dict.
    isolated : bool, default True
        Compute ``isolated_im`` (every position margined alone).

    Returns
    -------
    DataFrame
        ``account, im, mm, isolated_im, saving, saving_pct, currency, margin_requirement,
        maintenance_requirement, short_proceeds, deposit_excl_proceeds, greedy_margin_requirement,
        cash_requirement, error``; tidy rows per underlying in
        ``.attrs["components"]``. Accounts holding positions outside the model's domain carry the error.
    """
    raw = _model_tables(model, "cboe-strategy adapter needs the model's tables ([parameters], [underlyings])")

    def core(sub: pd.DataFrame) -> _AccountFigures:
        tot = {"margin_requirement": 0.0, "maintenance_requirement": 0.0, "short_proceeds": 0.0,
               "deposit_excl_proceeds": 0.0, "greedy_margin_requirement": 0.0, "cash_requirement": 0.0}
        rows: list[dict[str, Any]] = []
        for und, grp in sub.groupby("underlying", sort=True):
            u = strategy_unit(grp, raw, float(market.spot(str(und))), str(und))
            for k in tot:
                tot[k] += u[k]
                rows.append({"underlying": und, "rule": "cboe-strategy", "component": k, "amount": u[k]})
        im = _finite(tot["margin_requirement"], "strategy margin requirement")
        mm = _finite(tot["maintenance_requirement"], "strategy maintenance requirement")
        return _AccountFigures(im, mm, "USD", tot, rows)

    return _run(positions, market, core, "cboe-strategy", isolated=isolated, model=model)
