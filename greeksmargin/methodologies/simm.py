"""ISDA SIMM (Standard Initial Margin Model) from CRIF sensitivities: every risk class, 10-day and 1-day.

The formulas follow the ISDA SIMM methodology; every number (risk weights,
correlations, thresholds, historical volatility ratios, curvature scaling) comes from a parameter file
``models/simm-<version>.toml`` (read by ``greeksmargin.engine.params_files.load_simm_params``; this module
reads no file). A file may hold only some risk classes
(sections ``interest_rate``, ``credit_q``, ``credit_nonq``, ``equity``, ``commodity``, ``fx``); a
sensitivity of a class the file lacks is an error naming the class and the file.

Per product class (CRIF ``ProductClass``: RatesFX, Credit, Equity, Commodity) and risk class:

* delta: net sensitivity per risk factor; concentration ``CR = max(1, sqrt(|sum s| / T))`` per concentration
  group (IR: currency, over IRCurve and Inflation; credit, equity, commodity: qualifier; FX: currency), 10-day
  only (not applied to cross-currency basis); ``WS_k = RW_k s_k CR_k``;
  ``K_b = sqrt(sum_kl rho_kl f_kl WS_k WS_l)``, ``f_kl = min(CR)/max(CR)``;
  ``S_b = clamp(sum WS, -K_b, K_b)``; ``Delta = sqrt(sum K_b^2 + sum_{b!=c} gamma_bc g_bc S_b S_c)`` plus the
  residual bucket's K added (``g_bc`` = CR ratio of the currencies for IR, 1 otherwise). Credit base
  correlation (``Risk_BaseCorr``) is its own bucket-less term added to the CreditQ delta.
* vega: ``VR_k = HVR sum_j sigma_kj v_kj`` with ``sigma = RW_delta sqrt(365/d)/Phi^-1(0.99)`` for equity,
  commodity and FX (``d`` 14 days, 1-day: 1.4); ``VR_k = sum_j v_kj`` for IR and credit (the CRIF vega
  already is vega x implied vol); ``VCR`` as CR with vega thresholds; ``WS = VRW VR VCR``; aggregated like
  delta.
* curvature: ``CVR_k = sum_j SF(t_j) sigma_kj v_kj`` (sigma = 1 for IR and credit), ``SF(t) = 0.5 min(1, d/t)``;
  rho^2 within a bucket, gamma^2 across, ``theta = min(sum CVR / sum |CVR|, 0)``,
  ``lambda = (Phi^-1(0.995)^2 - 1)(1 + theta) - theta``; ``max(sum CVR + lambda sqrt(...), 0)``, residual alone;
  the IR curvature is scaled by ``HVR_IR^-2`` (v2.5 methodology).
* risk class = delta + vega + curvature; product class ``sqrt(sum IM_r^2 + sum_{r!=s} psi_rs IM_r IM_s)``;
  SIMM = sum over product classes; add-ons: ``sum_p (M_p - 1) SIMM_p`` (Param_ProductClassMultiplier),
  ``sum_q factor_q% x Notional_q`` (Param_AddOnNotionalFactor, Notional), fixed amounts
  (Param_AddOnFixedAmount). 1-day SIMM: 1-day weights, no concentration factor.

All amounts are USD. The hot path is vectorised: rows are netted per risk factor with one groupby, and the
within-bucket double sums use sorted prefix sums (O(n log n)) instead of n x n matrices, except for IR and
FX delta whose buckets are small.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from greeksmargin.errors import InputError
from greeksmargin.methodologies.simm_params import (
    HORIZONS,
    RISK_CLASSES,
    SimmParams,
    parse_simm_params,
)
from greeksmargin.risk.crif import CRIF_COLUMNS, PRODUCT_CLASSES, RISK_TYPES, fx_pair, normalize_crif

__all__ = [
    "CRIF_COLUMNS",
    "HORIZONS",
    "RISK_CLASSES",
    "RISK_TYPES",
    "SimmParams",
    "SimmResult",
    "fx_pair",
    "normalize_crif",
    "parse_simm_params",
    "simm_by_portfolio",
    "simm_margin",
    "tree_table",
]

MEASURES = ("Delta", "Vega", "Curvature")


# --------------------------------------------------------------------------------------------------- results
@dataclass
class SimmResult:
    """SIMM of one CRIF at one horizon.

    Attributes
    ----------
    total : float
        Total SIMM (USD): sum over product classes plus add-ons.
    horizon : str
        ``"10d"`` or ``"1d"``.
    version : str
        SIMM version of the parameters.
    product_classes : dict[str, float]
        SIMM per product class before add-ons (USD).
    breakdown : pandas.DataFrame
        Tidy rows ``product_class, risk_class, measure, bucket, amount`` (USD); ``bucket`` is ``"All"`` for the
        measure total; measures Delta, Vega, Curvature, BaseCorr and ``"All"`` (risk class margin). Add-on rows
        have product_class ``"AddOn"`` and measure ProductClassMultiplier, Notional or FixedAmount.
    addon : float
        Total add-on (USD), included in ``total``.
    """

    total: float
    horizon: str
    version: str
    product_classes: dict[str, float]
    breakdown: pd.DataFrame
    addon: float = 0.0

    def measure(self, measure: str, risk_class: str = "Equity") -> float:
        """Margin of a measure (Delta, Vega, Curvature) summed over product classes (USD)."""
        b = self.breakdown
        sel = (b["measure"] == measure) & (b["risk_class"] == risk_class) & (b["bucket"] == "All")
        return float(b.loc[sel, "amount"].sum())

    def tree(self) -> dict[str, Any]:
        """Nested SIMM tree (USD).

        ``{"total", "addon", "product_classes": {pc: {"margin", "risk_classes": {rc: {"margin", "Delta", "Vega",
        "Curvature"}}}}}``.
        """
        b = self.breakdown
        out: dict[str, Any] = {"horizon": self.horizon, "version": self.version, "total": self.total,
                               "addon": self.addon, "product_classes": {}}
        for pc, margin in self.product_classes.items():
            rcs: dict[str, Any] = {}
            sel = b[(b["product_class"] == pc) & (b["bucket"] == "All")]
            for r in sel.itertuples():
                node = rcs.setdefault(str(r.risk_class), {})
                node["margin" if r.measure == "All" else str(r.measure)] = float(r.amount)
            out["product_classes"][pc] = {"margin": margin, "risk_classes": rcs}
        return out


# --------------------------------------------------------------------------------------------------- kernels
def _pair_sum(ws: np.ndarray, c: np.ndarray, group: np.ndarray | None = None) -> float:
    """Weighted pair sum ``sum_{k != l} f_kl ws_k ws_l``, ``f_kl = min(c_k, c_l) / max(c_k, c_l)``.

    Over all pairs or only pairs of the same ``group``; O(n log n) by sorting on ``c`` and prefix sums.
    """
    n = len(ws)
    if n < 2:
        return 0.0
    order = np.argsort(c, kind="stable") if group is None else np.lexsort((c, group))
    w = ws[order]
    cc = c[order]
    a = w * cc
    excl = np.cumsum(a) - a
    if group is not None:
        g = group[order]
        start = np.r_[True, g[1:] != g[:-1]]
        first = np.maximum.accumulate(np.where(start, np.arange(n), 0))
        excl = excl - excl[first]
    return 2.0 * float(np.dot(w / cc, excl))


def _k_structured(ws: np.ndarray, c: np.ndarray, group: np.ndarray, rho_same: float, rho_diff: float) -> float:
    """``sqrt(WS' R WS)`` with ``R_kk = 1``, ``R_kl = rho(same group?) f_kl`` (rows are distinct risk factors)."""
    k2 = float(ws @ ws) + rho_diff * _pair_sum(ws, c)
    if rho_same != rho_diff:
        k2 += (rho_same - rho_diff) * _pair_sum(ws, c, group)
    return math.sqrt(max(k2, 0.0))


def _across(k: np.ndarray, s: np.ndarray, gamma: np.ndarray) -> float:
    """``sqrt(sum K_b^2 + sum_{b != c} gamma_bc S_b S_c)``; ``gamma`` (n, n), its diagonal ignored."""
    if len(k) == 0:
        return 0.0
    g = gamma.copy()
    np.fill_diagonal(g, 0.0)
    return math.sqrt(max(float(k @ k + s @ g @ s), 0.0))


def _lam(theta: float, q995: float) -> float:
    return (q995**2 - 1.0) * (1.0 + theta) - theta


def _curvature_total(k: np.ndarray, sums: np.ndarray, abss: np.ndarray, gamma2: np.ndarray, q995: float) -> float:
    """Curvature of non-residual buckets: ``max(sum CVR + lambda sqrt(sum K^2 + sum gamma^2 S S), 0)``."""
    total_abs = float(abss.sum())
    if len(k) == 0 or total_abs == 0.0:
        return 0.0
    total = float(sums.sum())
    theta = min(total / total_abs, 0.0)
    s = np.clip(sums, -k, k)
    return max(total + _lam(theta, q995) * _across(k, s, gamma2), 0.0)


def _curvature_residual(k: float, total: float, total_abs: float, q995: float) -> float:
    if total_abs == 0.0:
        return 0.0
    theta = min(total / total_abs, 0.0)
    return max(total + _lam(theta, q995) * k, 0.0)


def _gamma_for(names: list[str], mat: np.ndarray, buckets: list[str]) -> np.ndarray:
    idx = [names.index(b) for b in buckets]
    return mat[np.ix_(idx, idx)]


@dataclass
class _Ctx:
    params: SimmParams
    horizon: str
    ccy: str
    conc: bool
    alpha: float
    q995: float
    sigma_mult: float
    sf_days: float
    sf_factor: float

    def sf(self, labels: pd.Series, what: str) -> np.ndarray:
        """Curvature scaling ``SF(t) = factor * min(1, d / t_days)`` of each tenor label."""
        codes, uniques = pd.factorize(labels)
        days = []
        for u in uniques:
            try:
                days.append(self.params.tenor_days(u))
            except InputError as exc:
                raise InputError(f"{exc.reason} ({what})", file="<CRIF>", column="Label1") from exc
        d = np.asarray(days, dtype=float)
        return np.asarray(self.sf_factor * np.minimum(1.0, self.sf_days / d))[codes]

    def cr(self, amounts: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
        if not self.conc:
            return np.ones_like(amounts)
        return np.maximum(1.0, np.sqrt(np.abs(amounts) / thresholds))


def _result(out: dict[str, Any]) -> dict[str, Any]:
    out["All"] = sum(out.get(m, 0.0) for m in ("Delta", "Vega", "Curvature"))
    return out


def _check_buckets(rows: pd.DataFrame, known: list[str], what: str) -> None:
    bad = ~rows["Bucket"].isin(known)
    if bad.any():
        r = rows[bad].iloc[0]
        raise InputError(f"unknown {what} bucket '{r['Bucket']}' for {r['RiskType']} qualifier '{r['Qualifier']}' "
                         f"(known: {', '.join(known)})", file="<CRIF>", column="Bucket")


def _lookup(table: dict[str, float], keys: np.ndarray) -> np.ndarray:
    """``table[k]`` for every key (vectorised through the distinct keys)."""
    codes, uniques = pd.factorize(keys)
    return np.array([table[str(u)] for u in uniques], dtype=float)[codes] if len(keys) else np.zeros(0)


def _group_sum(keys: list[np.ndarray], values: np.ndarray) -> np.ndarray:
    """Per row, the sum of ``values`` over the rows sharing the same keys."""
    codes = pd.MultiIndex.from_arrays(keys).factorize()[0] if len(keys) > 1 else pd.factorize(keys[0])[0]
    sums = np.bincount(codes, weights=values)
    return sums[codes]


# --------------------------------------------------------------------------------------------------- classes
def _name_groups(rows: pd.DataFrame, group_col: str) -> np.ndarray:
    """Group codes for the same/different correlation: ``group_col`` (Qualifier, or Label2 for CreditNonQ).

    CreditNonQ: Label2 names the group of underlying names two sensitivities share (ISDA SIMM methodology:
    "same" correlation when their underlying names overlap); a blank Label2 declares no shared group, so such a
    sensitivity shares its group only with the same Qualifier (the same name), never with other blank rows.
    """
    if group_col == "Qualifier":
        return pd.factorize(rows["Qualifier"])[0]
    lab = rows[group_col].astype(str).str.strip()
    key = np.where(lab == "", "\x00name:" + rows["Qualifier"].astype(str), "\x00group:" + lab)
    return pd.factorize(key)[0]


def _qualifier_class(rc: str, rows: pd.DataFrame, ctx: _Ctx) -> dict[str, Any]:
    """Credit (qualifying, non-qualifying), equity and commodity: correlation by qualifier or group name."""
    p = ctx.params
    sec = p.section(rc)
    names = [str(b) for b in p._get(f"{sec}.buckets")]
    res = p.residual
    _check_buckets(rows[rows["RiskType"] != "Risk_BaseCorr"], names, rc)
    gamma_names, gamma = p.inter_bucket(sec)
    group_col = "Label2" if rc == "CreditNonQualifying" else "Qualifier"
    if rc in ("Equity", "Commodity"):
        intra = p.per_bucket(sec, "intra_bucket_correlation")
        rho = {b: ((1.0, intra[b]) if b != res else (1.0, 0.0)) for b in names}
    else:
        same_key = "same_issuer_correlation" if rc == "CreditQualifying" else "same_group_correlation"
        diff_key = "different_issuer_correlation" if rc == "CreditQualifying" else "different_group_correlation"
        r_same, r_diff = p.scalar(f"{sec}.{same_key}"), p.scalar(f"{sec}.{diff_key}")
        r_res = p.scalar(f"{sec}.residual_correlation")
        rho = {b: ((r_same, r_diff) if b != res else (r_res, r_res)) for b in names}
    sigma_mode = rc in ("Equity", "Commodity")
    delta_type = {"CreditQualifying": "Risk_CreditQ", "CreditNonQualifying": "Risk_CreditNonQ",
                  "Equity": "Risk_Equity", "Commodity": "Risk_Commodity"}[rc]
    vega_type = {"CreditQualifying": "Risk_CreditVol", "CreditNonQualifying": "Risk_CreditVolNonQ",
                 "Equity": "Risk_EquityVol", "Commodity": "Risk_CommodityVol"}[rc]
    out: dict[str, Any] = {"buckets": {}}

    def aggregate(b_arr: np.ndarray, ws: np.ndarray, c: np.ndarray, grp: np.ndarray,
                  square: bool = False) -> tuple[float, dict[str, float], dict[str, tuple[float, float, float]]]:
        per: dict[str, tuple[float, float, float]] = {}
        for b in pd.unique(b_arr):
            m = b_arr == b
            rs, rd = rho[b]
            if square:
                rs, rd = rs * rs, rd * rd
            w = ws[m]
            k = _k_structured(w, c[m], grp[m], rs, rd)
            per[str(b)] = (k, float(w.sum()), float(np.abs(w).sum()))
        regular = sorted((b for b in per if b != res), key=names.index)
        k_arr = np.array([per[b][0] for b in regular])
        s_arr = np.array([per[b][1] for b in regular])
        g = _gamma_for(gamma_names, gamma, regular) if regular else np.zeros((0, 0))
        if square:
            return 0.0, {b: v[0] for b, v in per.items()}, per
        margin = _across(k_arr, np.clip(s_arr, -k_arr, k_arr), g) + (per[res][0] if res in per else 0.0)
        return margin, {b: v[0] for b, v in per.items()}, per

    delta = rows[rows["RiskType"] == delta_type]
    if len(delta):
        b_arr = delta["Bucket"].to_numpy(dtype=object)
        s = delta["AmountUSD"].to_numpy(dtype=float)
        rw = _lookup(p.per_bucket(sec, "delta.risk_weight", ctx.horizon), b_arr)
        thr = _lookup(p.per_bucket(sec, "delta.concentration_threshold"), b_arr)
        net_q = _group_sum([b_arr, delta["Qualifier"].to_numpy(dtype=object)], s)
        c = ctx.cr(net_q, thr)
        grp = _name_groups(delta, group_col)
        out["Delta"], out["buckets"]["Delta"], _ = aggregate(b_arr, rw * s * c, c, grp)
    if rc == "CreditQualifying":
        bc = rows[rows["RiskType"] == "Risk_BaseCorr"]
        if len(bc):
            net = bc.groupby("Qualifier", sort=True)["AmountUSD"].sum().to_numpy(dtype=float)
            ws = p.scalar(f"{sec}.delta.base_corr_risk_weight", ctx.horizon) * net
            k = _k_structured(ws, np.ones_like(ws), np.arange(len(ws)), 1.0,
                              p.scalar(f"{sec}.delta.base_corr_correlation"))
            out["BaseCorr"] = k
            out["Delta"] = out.get("Delta", 0.0) + k
    vega = rows[rows["RiskType"] == vega_type]
    if len(vega):
        b_arr = vega["Bucket"].to_numpy(dtype=object)
        v = vega["AmountUSD"].to_numpy(dtype=float)
        q_arr = vega["Qualifier"].to_numpy(dtype=object)
        if sigma_mode:
            sigma = _lookup(p.per_bucket(sec, "delta.risk_weight", ctx.horizon), b_arr) * ctx.sigma_mult
            hvr = p.scalar(f"{sec}.vega.historical_volatility_ratio", ctx.horizon)
        else:
            sigma = np.ones_like(v)
            hvr = 1.0
        vr = hvr * sigma * v
        vrw = _lookup(p.per_bucket(sec, "vega.risk_weight", ctx.horizon), b_arr)
        vthr = _lookup(p.per_bucket(sec, "vega.concentration_threshold"), b_arr)
        c = ctx.cr(_group_sum([b_arr, q_arr], vr), vthr)
        grp = _name_groups(vega, group_col)
        out["Vega"], out["buckets"]["Vega"], _ = aggregate(b_arr, vrw * vr * c, c, grp)
        # curvature
        cvr = ctx.sf(vega["Label1"], vega_type) * sigma * v
        no_curv = {str(b) for b in p.raw.get(sec, {}).get("no_curvature_buckets", [])}
        if no_curv:
            cvr = np.where(np.isin(b_arr, list(no_curv)), 0.0, cvr)
        if sigma_mode:
            # risk factor = qualifier: sum CVR over tenors first (|CVR| is per risk factor)
            key = pd.MultiIndex.from_arrays([b_arr, q_arr])
            codes, uniq = key.factorize()
            cvr_q = np.bincount(codes, weights=cvr)
            b_q = np.asarray(uniq.get_level_values(0), dtype=object)
            grp_q = np.arange(len(cvr_q))
            _, kb, per = aggregate(b_q, cvr_q, np.ones_like(cvr_q), grp_q, square=True)
        else:
            _, kb, per = aggregate(b_arr, cvr, np.ones_like(cvr), grp, square=True)
        regular = sorted((b for b in per if b != res), key=names.index)
        g2 = _gamma_for(gamma_names, gamma, regular) ** 2 if regular else np.zeros((0, 0))
        curv = _curvature_total(np.array([per[b][0] for b in regular]), np.array([per[b][1] for b in regular]),
                                np.array([per[b][2] for b in regular]), g2, ctx.q995)
        if res in per:
            curv += _curvature_residual(*per[res], q995=ctx.q995)
        out["Curvature"], out["buckets"]["Curvature"] = curv, kb
    return _result(out)


def _ir_class(rows: pd.DataFrame, ctx: _Ctx) -> dict[str, Any]:
    """Interest rates: buckets are currencies; tenor x sub-curve correlations, inflation, cross-currency basis."""
    p = ctx.params
    sec = p.section("InterestRate")
    tenors = [str(t).lower() for t in p._get(f"{sec}.tenors")]
    t_index = {t: i for i, t in enumerate(tenors)}
    n_t = len(tenors)
    tcorr = p.matrix(f"{sec}.tenor_correlation", n_t)
    vol_buckets = [str(b) for b in p._get(f"{sec}.buckets")]
    low = set(p.raw[sec].get("low_vol_currencies", []))
    regular = set(p.raw[sec].get("regular_vol_currencies", []))
    cats = [set(c) for c in p._get(f"{sec}.concentration_categories")]
    gamma_ccy = p.scalar(f"{sec}.inter_currency_correlation")
    out: dict[str, Any] = {"buckets": {}}

    def category(ccy: str) -> int:
        for i, members in enumerate(cats):
            if ccy in members:
                return i
        return len(cats)

    def tenor_idx(labels: pd.Series, rt: str) -> np.ndarray:
        idx = labels.str.lower().map(t_index)
        if idx.isna().any():
            bad = labels[idx.isna()].iloc[0]
            raise InputError(f"unknown {rt} tenor '{bad}' (known: {', '.join(tenors)})", file="<CRIF>",
                             column="Label1")
        return idx.to_numpy(dtype=int)

    def across(per: dict[str, tuple[float, float, float]], square: bool = False) -> float:
        ccys = sorted(per)
        k = np.array([per[c][0] for c in ccys])
        s = np.array([per[c][1] for c in ccys])
        cr = np.array([per[c][2] for c in ccys])
        g = np.minimum.outer(cr, cr) / np.maximum.outer(cr, cr)
        gam = np.full((len(ccys), len(ccys)), gamma_ccy)
        return _across(k, np.clip(s, -k, k), gam * g)

    delta = rows[rows["RiskType"].isin(["Risk_IRCurve", "Risk_Inflation", "Risk_XCcyBasis"])]
    if len(delta):
        h = ctx.horizon
        rw_tab = np.asarray(p.at(f"{sec}.delta.risk_weight", h), dtype=float)
        infl_rw = p.scalar(f"{sec}.delta.inflation_risk_weight", h)
        xccy_rw = p.scalar(f"{sec}.delta.xccy_basis_risk_weight", h)
        thr = np.asarray(p._get(f"{sec}.delta.concentration_threshold"), dtype=float)
        phi = p.scalar(f"{sec}.sub_curve_correlation")
        r_inf = p.scalar(f"{sec}.inflation_correlation")
        r_xccy = p.scalar(f"{sec}.xccy_basis_correlation")
        per: dict[str, tuple[float, float, float]] = {}
        for ccy, g in delta.groupby("Qualifier", sort=True):
            kind = np.select([g["RiskType"] == "Risk_IRCurve", g["RiskType"] == "Risk_Inflation"], [0, 1], 2)
            s = g["AmountUSD"].to_numpy(dtype=float)
            curve = kind == 0
            ti = np.zeros(len(g), dtype=int)
            rw = np.where(kind == 1, infl_rw, xccy_rw)
            if curve.any():
                ti[curve] = tenor_idx(g.loc[curve, "Label1"], "Risk_IRCurve")
                bucket = g.loc[curve, "Bucket"].to_numpy(dtype=object)
                default = "2" if ccy in low else ("1" if ccy in regular else "3")
                bucket = np.where(bucket == "", default, bucket)
                bad = ~np.isin(bucket, vol_buckets)
                if bad.any():
                    raise InputError(f"unknown Risk_IRCurve bucket '{bucket[bad][0]}' for {ccy} (known: "
                                     f"{', '.join(vol_buckets)})", file="<CRIF>", column="Bucket")
                bi = np.array([vol_buckets.index(b) for b in bucket])
                rw[curve] = rw_tab[bi, ti[curve]]
            cr = float(ctx.cr(np.array([s[kind != 2].sum()]), np.array([thr[category(str(ccy))]]))[0])
            ws = rw * s * np.where(kind == 2, 1.0, cr)  # cross-currency basis: no concentration factor
            sub = pd.factorize(g["Label2"])[0]
            corr = tcorr[np.ix_(ti, ti)] * np.where(sub[:, None] == sub[None, :], 1.0, phi)
            ki, kj = kind[:, None], kind[None, :]
            corr = np.where((ki == 0) & (kj == 0), corr, 1.0)
            corr = np.where(((ki == 0) & (kj == 1)) | ((ki == 1) & (kj == 0)), r_inf, corr)
            corr = np.where((ki == 2) ^ (kj == 2), r_xccy, corr)
            np.fill_diagonal(corr, 1.0)
            k = math.sqrt(max(float(ws @ corr @ ws), 0.0))
            per[str(ccy)] = (k, float(ws.sum()), cr)
        out["Delta"] = across(per)
        out["buckets"]["Delta"] = {c: v[0] for c, v in per.items()}

    vega = rows[rows["RiskType"].isin(["Risk_IRVol", "Risk_InflationVol"])]
    if len(vega):
        h = ctx.horizon
        vrw = p.scalar(f"{sec}.vega.risk_weight", h)
        vrw_inf = (p.scalar(f"{sec}.vega.inflation_vol_risk_weight", h)
                   if "inflation_vol_risk_weight" in p.raw[sec].get("vega", {}) else vrw)
        vthr = np.asarray(p._get(f"{sec}.vega.concentration_threshold"), dtype=float)
        r_inf = p.scalar(f"{sec}.vega.inflation_vol_correlation")
        hvr = p.scalar(f"{sec}.vega.historical_volatility_ratio", h)
        per_v: dict[str, tuple[float, float, float]] = {}
        per_c: dict[str, tuple[float, float, float]] = {}
        for ccy, g in vega.groupby("Qualifier", sort=True):
            is_inf = (g["RiskType"] == "Risk_InflationVol").to_numpy()
            v_all = g["AmountUSD"].to_numpy(dtype=float)
            sf_all = ctx.sf(g["Label1"], "Risk_IRVol")
            # inflation volatility is one risk factor per currency: its tenors are summed first
            ti = tenor_idx(g.loc[~is_inf, "Label1"], "Risk_IRVol")
            v = v_all[~is_inf]
            cvr = sf_all[~is_inf] * v
            if is_inf.any():
                ti = np.r_[ti, 0]
                v = np.r_[v, v_all[is_inf].sum()]
                cvr = np.r_[cvr, float((sf_all[is_inf] * v_all[is_inf]).sum())]
            infl = np.r_[np.zeros(int((~is_inf).sum()), dtype=bool), np.ones(int(is_inf.any()), dtype=bool)]
            corr = tcorr[np.ix_(ti, ti)]
            ii, jj = infl[:, None], infl[None, :]
            corr = np.where(ii & jj, 1.0, corr)
            corr = np.where(ii ^ jj, r_inf, corr)
            np.fill_diagonal(corr, 1.0)
            vcr = float(ctx.cr(np.array([v.sum()]), np.array([vthr[category(str(ccy))]]))[0])
            ws = np.where(infl, vrw_inf, vrw) * v * vcr
            per_v[str(ccy)] = (math.sqrt(max(float(ws @ corr @ ws), 0.0)), float(ws.sum()), vcr)
            per_c[str(ccy)] = (math.sqrt(max(float(cvr @ (corr**2) @ cvr), 0.0)), float(cvr.sum()),
                               float(np.abs(cvr).sum()))
        out["Vega"] = across(per_v)
        out["buckets"]["Vega"] = {c: x[0] for c, x in per_v.items()}
        ccys = sorted(per_c)
        n = len(ccys)
        curv = _curvature_total(np.array([per_c[c][0] for c in ccys]), np.array([per_c[c][1] for c in ccys]),
                                np.array([per_c[c][2] for c in ccys]), np.full((n, n), gamma_ccy**2), ctx.q995)
        if p.raw[sec].get("curvature_hvr_scaling", True):
            curv /= hvr**2
        out["Curvature"] = curv
        out["buckets"]["Curvature"] = {c: x[0] for c, x in per_c.items()}
    return _result(out)


def _fx_group(ccy: str, high_vol: set[str]) -> int:
    return 1 if ccy in high_vol else 0


def _fx_category(ccy: str, categories: list[list[str]]) -> int:
    for i, members in enumerate(categories):
        if ccy in members:
            return i
    return len(categories)


def _fx_class(rows: pd.DataFrame, ctx: _Ctx) -> dict[str, Any]:
    """FX risk class: one bucket.

    Delta weights and correlations by volatility group of the calculation currency and the qualifier; vega per
    currency pair (pair order normalised), correlation ``fx.vega.correlation``.
    """
    p = ctx.params
    p.section("FX")
    high = {str(c) for c in p._get("fx.high_vol_currencies")}
    cats = [list(map(str, c)) for c in p._get("fx.delta.concentration_categories")]
    rw = p.matrix(f"fx.delta.risk_weight.{ctx.horizon}", 2)
    g_calc = _fx_group(ctx.ccy, high)
    out: dict[str, Any] = {"buckets": {}}

    fx_rows = rows[rows["RiskType"] == "Risk_FX"]
    if len(fx_rows):
        delta = fx_rows[fx_rows["Qualifier"] != ctx.ccy.upper()]
        net = delta.groupby("Qualifier", sort=True)["AmountUSD"].sum()
        ccys = [str(c) for c in net.index]
        s = net.to_numpy(dtype=float)
        thr = np.asarray(p._get("fx.delta.concentration_threshold"), dtype=float)
        groups = np.array([_fx_group(c, high) for c in ccys], dtype=int)
        weights = rw[g_calc, groups] if len(ccys) else np.zeros(0)
        t = np.array([thr[_fx_category(c, cats)] for c in ccys]) if ccys else np.zeros(0)
        c = ctx.cr(s, t) if ccys else np.ones(0)
        key = "correlation_high_vol_calc_ccy" if g_calc == 1 else "correlation_regular_calc_ccy"
        corr = p.matrix(f"fx.delta.{key}", 2)[np.ix_(groups, groups)] * (np.minimum.outer(c, c) /
                                                                      np.maximum.outer(c, c))
        np.fill_diagonal(corr, 1.0)
        ws = weights * s * c
        out["Delta"] = math.sqrt(max(float(ws @ corr @ ws), 0.0))
        out["buckets"]["Delta"] = {"FX": out["Delta"]}

    vega = rows[rows["RiskType"] == "Risk_FXVol"]
    if len(vega):
        hvr = p.scalar("fx.vega.historical_volatility_ratio", ctx.horizon)
        vrw = p.scalar("fx.vega.risk_weight", ctx.horizon)
        vthr = np.asarray(p._get("fx.vega.concentration_threshold"), dtype=float)
        v_corr = p.scalar("fx.vega.correlation")
        pairs = vega["Qualifier"].map(lambda q: fx_pair(q) or q).to_numpy(dtype=object)
        uniq_pairs, codes = np.unique(pairs, return_inverse=True)
        sig_pair = np.array([rw[_fx_group(q[:3], high), _fx_group(q[3:], high)] for q in uniq_pairs]) * ctx.sigma_mult
        v = vega["AmountUSD"].to_numpy(dtype=float)
        vr = np.bincount(codes, weights=hvr * sig_pair[codes] * v)
        cvr = np.bincount(codes, weights=ctx.sf(vega["Label1"], "Risk_FXVol") * sig_pair[codes] * v)
        table = {(0, 0): 0, (0, 1): 1, (0, 2): 2, (1, 1): 3, (1, 2): 4}
        pair_cat = []
        for q in uniq_pairs:
            lo, hi = sorted((_fx_category(q[:3], cats), _fx_category(q[3:], cats)))
            pair_cat.append(table.get((lo, hi), 5))
        c = ctx.cr(vr, vthr[pair_cat])
        grp = np.arange(len(vr))
        out["Vega"] = _k_structured(vrw * vr * c, c, grp, 1.0, v_corr)
        out["buckets"]["Vega"] = {"FX": out["Vega"]}
        k = _k_structured(cvr, np.ones_like(cvr), grp, 1.0, v_corr**2)
        out["Curvature"] = _curvature_total(np.array([k]), np.array([cvr.sum()]), np.array([np.abs(cvr).sum()]),
                                            np.ones((1, 1)), ctx.q995)
        out["buckets"]["Curvature"] = {"FX": k}
    return _result(out)


# --------------------------------------------------------------------------------------------------- SIMM
_NET_KEYS = ["ProductClass", "RiskType", "Qualifier", "Bucket", "Label1", "Label2"]


def _net(df: pd.DataFrame) -> pd.DataFrame:
    """Net amounts per risk factor (one groupby over categorical keys)."""
    if len(df) < 20_000:  # small CRIFs: plain object keys are quicker than building categoricals
        return df.groupby(_NET_KEYS, sort=False)["AmountUSD"].sum().reset_index()
    keys = {k: pd.Categorical(df[k]) for k in _NET_KEYS}
    grouped = pd.DataFrame(keys).assign(AmountUSD=df["AmountUSD"].to_numpy(dtype=float))
    net = grouped.groupby(_NET_KEYS, observed=True, sort=False)["AmountUSD"].sum().reset_index()
    for k in _NET_KEYS:
        net[k] = net[k].astype(str)
    return net


def _addons(params_rows: pd.DataFrame, pcs: dict[str, float]) -> tuple[float, list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    total = 0.0
    mult = params_rows[params_rows["RiskType"] == "Param_ProductClassMultiplier"]
    for pc, g in mult.groupby("Qualifier", sort=True):
        pc_name = str(pc)
        lower = {k.lower(): k for k in PRODUCT_CLASSES}
        pc_name = lower.get(pc_name.lower(), pc_name)
        if pc_name not in PRODUCT_CLASSES:
            raise InputError(f"Param_ProductClassMultiplier qualifier must be a product class "
                             f"({', '.join(PRODUCT_CLASSES)}), got '{pc}'", file="<CRIF>", column="Qualifier")
        amount = float((g["AmountUSD"] - 1.0).sum()) * pcs.get(pc_name, 0.0)
        rows.append(dict(product_class="AddOn", risk_class=pc_name, measure="ProductClassMultiplier", bucket="All",
                         amount=amount))
        total += amount
    factors = params_rows[params_rows["RiskType"] == "Param_AddOnNotionalFactor"]
    notionals = params_rows[params_rows["RiskType"] == "Notional"]
    if len(factors):
        fac = factors.groupby("Qualifier")["AmountUSD"].sum()
        notl = notionals.groupby("Qualifier")["AmountUSD"].sum()
        for q, f in fac.items():
            amount = float(f) / 100.0 * float(notl.get(q, 0.0))
            rows.append(dict(product_class="AddOn", risk_class=str(q), measure="Notional", bucket="All",
                             amount=amount))
            total += amount
    fixed = params_rows[params_rows["RiskType"] == "Param_AddOnFixedAmount"]
    if len(fixed):
        amount = float(fixed["AmountUSD"].sum())
        rows.append(dict(product_class="AddOn", risk_class="", measure="FixedAmount", bucket="All", amount=amount))
        total += amount
    return total, rows


def _simm_normalized(df: pd.DataFrame, p: SimmParams, horizon: str, calculation_currency: str) -> SimmResult:
    if horizon not in HORIZONS:
        raise InputError(f"horizon must be one of {HORIZONS}, got '{horizon}'")
    is_sens = df["RiskType"].isin(list(RISK_TYPES)).to_numpy()
    sens = df[is_sens]
    for rt in pd.unique(sens["RiskType"]):
        p.section(RISK_TYPES[str(rt)][0])
    ctx = _Ctx(
        params=p, horizon=horizon, ccy=str(calculation_currency).upper(), conc=p.concentration_on(horizon),
        alpha=float(norm.ppf(p.scalar("general.delta_confidence"))),
        q995=float(norm.ppf(p.scalar("general.curvature_confidence"))),
        sigma_mult=math.sqrt(365.0 / p.scalar("general.vega_sigma_days", horizon))
        / float(norm.ppf(p.scalar("general.delta_confidence"))),
        sf_days=p.scalar("general.curvature_scale_days", horizon), sf_factor=p.scalar("general.curvature_factor"),
    )
    net = _net(sens) if len(sens) else sens.iloc[:0][_NET_KEYS + ["AmountUSD"]]
    net["RiskClass"] = net["RiskType"].map(lambda rt: RISK_TYPES[rt][0])
    out_rows: list[dict[str, Any]] = []
    pcs: dict[str, float] = {}
    order = list(RISK_CLASSES)
    for pc, grp in net.groupby("ProductClass", sort=True):
        rc_margin: dict[str, float] = {}
        for rc in sorted(pd.unique(grp["RiskClass"]), key=order.index):
            sub = grp[grp["RiskClass"] == rc]
            if rc == "InterestRate":
                res = _ir_class(sub, ctx)
            elif rc == "FX":
                res = _fx_class(sub, ctx)
            else:
                res = _qualifier_class(rc, sub, ctx)
            rc_margin[rc] = res["All"]
            for m in MEASURES + ("BaseCorr",):
                if m in res:
                    out_rows.append(dict(product_class=pc, risk_class=rc, measure=m, bucket="All", amount=res[m]))
                    for b, k in res["buckets"].get(m, {}).items():
                        out_rows.append(dict(product_class=pc, risk_class=rc, measure=m, bucket=b, amount=k))
            out_rows.append(dict(product_class=pc, risk_class=rc, measure="All", bucket="All", amount=res["All"]))
        names = list(rc_margin)
        im = np.array([rc_margin[n] for n in names])
        psi = np.array([[p.risk_class_correlation(a, b) for b in names] for a in names])
        pcs[str(pc)] = math.sqrt(max(float(im @ psi @ im), 0.0))
    addon, addon_rows = _addons(df[~is_sens], pcs)
    out_rows.extend(addon_rows)
    breakdown = pd.DataFrame(out_rows, columns=["product_class", "risk_class", "measure", "bucket", "amount"])
    total = float(sum(pcs.values())) + addon
    return SimmResult(total=total, horizon=horizon, version=p.version, product_classes=pcs, breakdown=breakdown,
                      addon=addon)


def simm_margin(
    crif: pd.DataFrame | list[dict[str, Any]],
    params: SimmParams | Mapping[str, Any],
    horizon: str = "10d",
    calculation_currency: str = "USD",
    fx_rates: Mapping[str, float] | None = None,
) -> SimmResult:
    """ISDA SIMM of a CRIF, per product class, risk class and measure, and in total.

    Parameters
    ----------
    crif : DataFrame or list of dict
        CRIF rows (see :func:`greeksmargin.risk.crif.normalize_crif`): ProductClass, RiskType, Qualifier, Bucket,
        Label1, Label2, AmountUSD (or Amount + AmountCurrency with ``fx_rates``); add-on rows
        Param_ProductClassMultiplier, Param_AddOnNotionalFactor, Notional, Param_AddOnFixedAmount.
        Rows are not deduplicated: a row listed twice counts twice.
    params : SimmParams or mapping
        Parameters, or a parsed model document (see :func:`parse_simm_params`); a shipped version or a file is
        read by ``greeksmargin.engine.params_files.load_simm_params``.
    horizon : {"10d", "1d"}, default "10d"
        Margin period of risk of the calibration (1-day: 1-day weights, no concentration).
    calculation_currency : str, default "USD"
        Calculation currency (FX delta to it is not a risk; selects the FX correlation and weight group).
    fx_rates : mapping, optional
        USD per unit of currency, for rows given as Amount + AmountCurrency.

    Returns
    -------
    SimmResult
        Total (USD) with a breakdown per product class, risk class, measure and bucket.
    """
    p = parse_simm_params(params)
    return _simm_normalized(normalize_crif(crif, fx_rates), p, horizon, calculation_currency)


def simm_by_portfolio(
    crif: pd.DataFrame | list[dict[str, Any]],
    params: SimmParams | Mapping[str, Any],
    horizon: str = "10d",
    calculation_currency: str = "USD",
    fx_rates: Mapping[str, float] | None = None,
    by: str | None = "PortfolioID",
) -> dict[str, SimmResult]:
    """SIMM of each portfolio of a CRIF (``by`` a CRIF column, e.g. PortfolioID or TradeID; None: one total).

    Returns
    -------
    dict[str, SimmResult]
        Keyed by the column's value (``"All"`` when ``by`` is None or the column is empty on every row).
    """
    p = parse_simm_params(params)
    df = normalize_crif(crif, fx_rates)
    if by is None:
        return {"All": _simm_normalized(df, p, horizon, calculation_currency)}
    if by not in df.columns:
        raise InputError(f"no CRIF column '{by}' to group by", file="<CRIF>", column=by)
    if (df[by] == "").all():
        return {"All": _simm_normalized(df, p, horizon, calculation_currency)}
    return {str(k): _simm_normalized(g, p, horizon, calculation_currency)
            for k, g in df.groupby(by, sort=True)}


def tree_table(results: Mapping[str, SimmResult]) -> pd.DataFrame:
    """The SIMM tree of several portfolios as one tidy table, top-down.

    Parameters
    ----------
    results : mapping
        Portfolio name -> :class:`SimmResult` (e.g. from :func:`simm_by_portfolio`).

    Returns
    -------
    pandas.DataFrame
        Columns ``portfolio, level, product_class, risk_class, measure, amount_usd``; per portfolio the total
        (level 0), each product class (1), each risk class (2) and its Delta / Vega / Curvature / BaseCorr
        (3), then add-on rows (level 1, product_class ``"AddOn"``).
    """
    rows: list[dict[str, Any]] = []
    for name, res in results.items():
        rows.append(dict(portfolio=name, level=0, product_class="Total", risk_class="", measure="",
                         amount_usd=res.total))
        b = res.breakdown[res.breakdown["bucket"] == "All"]
        for pc, margin in res.product_classes.items():
            rows.append(dict(portfolio=name, level=1, product_class=pc, risk_class="", measure="", amount_usd=margin))
            sub = b[b["product_class"] == pc]
            for rc in [r for r in RISK_CLASSES if r in set(sub["risk_class"])]:
                rc_rows = sub[sub["risk_class"] == rc]
                total = rc_rows.loc[rc_rows["measure"] == "All", "amount"]
                rows.append(dict(portfolio=name, level=2, product_class=pc, risk_class=rc, measure="",
                                 amount_usd=float(total.iloc[0]) if len(total) else 0.0))
                for r in rc_rows[rc_rows["measure"] != "All"].itertuples():
                    rows.append(dict(portfolio=name, level=3, product_class=pc, risk_class=rc, measure=r.measure,
                                     amount_usd=float(r.amount)))
        for r in b[b["product_class"] == "AddOn"].itertuples():
            rows.append(dict(portfolio=name, level=1, product_class="AddOn", risk_class=r.risk_class,
                             measure=r.measure, amount_usd=float(r.amount)))
    return pd.DataFrame(rows, columns=["portfolio", "level", "product_class", "risk_class", "measure", "amount_usd"])
