"""ISDA SIMM (Standard Initial Margin Model) for the equity and FX risk classes, from CRIF sensitivities.

The formulas follow the ISDA SIMM methodology (METHODS.md section 7); every number (risk weights, correlations,
thresholds, historical volatility ratios, curvature scaling) comes from a parameter file
``models/simm-<version>.toml`` read by :func:`load_simm_params`.

Per product class (CRIF ``ProductClass``) and risk class (Equity: ``Risk_Equity`` delta, ``Risk_EquityVol`` vega):

* delta: net ``s_k`` per qualifier; ``CR_k = max(1, sqrt(|s_k| / T_b))`` (10-day only);
  ``WS_k = RW_b s_k CR_k``; ``K_b = sqrt(sum WS^2 + sum_{k!=l} rho_b f_kl WS_k WS_l)``,
  ``f_kl = min(CR)/max(CR)``; ``S_b = clamp(sum WS, -K_b, K_b)``;
  ``Delta = sqrt(sum K_b^2 + sum_{b!=c} gamma_bc S_b S_c) + K_residual``;
* vega: ``sigma_b = RW_b sqrt(365 / d) / Phi^-1(0.99)`` (d = 14 days, 1-day: 1.4);
  ``VR_k = HVR sum_j sigma_b vega_kj``; ``VCR_k = max(1, sqrt(|VR_k| / VT_b))``; ``WS_k = VRW_b VR_k VCR_k``;
  aggregated like delta;
* curvature: ``CVR_k = sum_j SF(t_j) sigma_b vega_kj``, ``SF(t) = 0.5 min(1, d / t_days)``; rho^2 within a bucket,
  gamma^2 across; ``theta = min(sum CVR / sum |CVR|, 0)``, ``lambda = (Phi^-1(0.995)^2 - 1)(1 + theta) - theta``;
  ``Curvature = max(sum CVR + lambda sqrt(...), 0)``, the residual bucket on its own;
* risk class = delta + vega + curvature; product class ``sqrt(sum IM_r^2 + sum psi_rs IM_r IM_s)``;
  total = sum over product classes. 1-day SIMM: 1-day weights, no concentration factor.

All amounts are USD. Delta sensitivities are per 1% relative move; vega sensitivities per vol point.
FX (``Risk_FX``, ``Risk_FXVol``) follows the same pattern with one bucket; see :func:`fx_margin`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from .. import io
from ..errors import InputError, ModelError

#: CRIF column names (canonical) and the lower-case / snake-case aliases accepted.
CRIF_COLUMNS = ["ProductClass", "RiskType", "Qualifier", "Bucket", "Label1", "Label2", "AmountUSD"]
_ALIASES = {
    "productclass": "ProductClass",
    "product_class": "ProductClass",
    "risktype": "RiskType",
    "risk_type": "RiskType",
    "qualifier": "Qualifier",
    "bucket": "Bucket",
    "label1": "Label1",
    "label_1": "Label1",
    "label2": "Label2",
    "label_2": "Label2",
    "amountusd": "AmountUSD",
    "amount_usd": "AmountUSD",
}
#: risk type -> (risk class, measure)
RISK_TYPES = {
    "Risk_Equity": ("Equity", "Delta"),
    "Risk_EquityVol": ("Equity", "Vega"),
    "Risk_FX": ("FX", "Delta"),
    "Risk_FXVol": ("FX", "Vega"),
}
HORIZONS = ("10d", "1d")
MODELS_DIR = Path(__file__).resolve().parents[2] / "models"


# --------------------------------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class SimmParams:
    """Parameters of one SIMM version (all tables as read from the model file).

    Attributes
    ----------
    version : str
        SIMM version, e.g. ``"2.5"``.
    source : str
        Where the numbers come from.
    raw : dict
        The parsed TOML document.
    file : str
        The model file read (``"<dict>"`` when built from a dict).
    """

    version: str
    source: str
    raw: dict[str, Any] = field(repr=False)
    file: str = "<dict>"

    # --- accessors -------------------------------------------------------------------------------------------
    def _get(self, dotted: str) -> Any:
        node: Any = self.raw
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                raise ModelError("missing parameter", file=self.file, key=dotted)
            node = node[part]
        return node

    @property
    def buckets(self) -> list[str]:
        """Equity buckets in the order of the per-bucket tables."""
        return [str(b) for b in self._get("equity.buckets")]

    @property
    def residual(self) -> str:
        """Name of the residual bucket."""
        return str(self.raw.get("general", {}).get("residual_bucket", "Residual"))

    def _get_at(self, dotted: str, horizon: str | None) -> Any:
        """The value at a dotted key, or its ``horizon`` entry when ``horizon`` is given."""
        value = self._get(dotted)
        if horizon is None:
            return value
        if not isinstance(value, dict) or horizon not in value:
            raise ModelError(f"missing horizon '{horizon}'", file=self.file, key=dotted)
        return value[horizon]

    def bucket_table(self, dotted: str, horizon: str | None = None) -> dict[str, float]:
        """A per-bucket table (optionally per horizon) as ``{bucket: value}``."""
        values = self._get_at(dotted, horizon)
        if len(values) != len(self.buckets):
            raise ModelError(f"expected {len(self.buckets)} values, got {len(values)}", file=self.file, key=dotted)
        return {b: float(v) for b, v in zip(self.buckets, values)}

    def scalar(self, dotted: str, horizon: str | None = None) -> float:
        """A scalar parameter (optionally per horizon)."""
        return float(self._get_at(dotted, horizon))

    def inter_bucket(self) -> tuple[list[str], np.ndarray]:
        """Inter-bucket correlation gamma: (bucket names, matrix of shape (n, n))."""
        names = [str(b) for b in self._get("equity.inter_bucket_buckets")]
        mat = np.asarray(self._get("equity.inter_bucket_correlation"), dtype=float)
        if mat.shape != (len(names), len(names)):
            raise ModelError(f"matrix shape {mat.shape} does not match {len(names)} buckets", file=self.file,
                             key="equity.inter_bucket_correlation")
        return names, mat

    def concentration_on(self, horizon: str) -> bool:
        """Whether the concentration factor applies at this horizon."""
        return bool(self._get("general.concentration").get(horizon, horizon == "10d"))

    def tenor_days(self, tenor: str) -> float:
        """Days of a SIMM tenor label such as ``2w``, ``3m``, ``10y`` (units from ``general.tenor_unit_days``)."""
        units = self._get("general.tenor_unit_days")
        text = str(tenor).strip().lower()
        if len(text) < 2 or text[-1] not in units:
            raise InputError(f"unknown tenor label '{tenor}'", column="Label1")
        try:
            n = float(text[:-1])
        except ValueError as exc:
            raise InputError(f"unknown tenor label '{tenor}'", column="Label1") from exc
        unit = units[text[-1]]
        return n * float(Fraction(unit)) if isinstance(unit, str) else n * float(unit)

    def risk_class_correlation(self, a: str, b: str) -> float:
        """Correlation psi between two risk classes."""
        if a == b:
            return 1.0
        classes = list(self._get("risk_class_correlation.classes"))
        mat = self._get("risk_class_correlation.matrix")
        try:
            return float(mat[classes.index(a)][classes.index(b)])
        except ValueError as exc:
            raise ModelError(f"no correlation for risk classes {a}/{b}", file=self.file,
                             key="risk_class_correlation") from exc


def load_simm_params(version_or_path: str | Path | dict[str, Any] | SimmParams = "2.5") -> SimmParams:
    """Load SIMM parameters.

    Parameters
    ----------
    version_or_path : str, Path, dict or SimmParams
        A version (``"2.5"``, ``"2.6"``, or ``"simm-2.5"``) of a shipped file in ``models/``, a path to a TOML file
        of the same layout, an already parsed dict, or a :class:`SimmParams` (returned as is).

    Returns
    -------
    SimmParams

    Raises
    ------
    ModelError
        Unknown version or a file without the required tables (the message names the key).
    """
    if isinstance(version_or_path, SimmParams):
        return version_or_path
    if isinstance(version_or_path, dict):
        raw, file = version_or_path, "<dict>"
    else:
        text = str(version_or_path)
        path = Path(text)
        if not (path.suffix == ".toml" or path.exists()):
            name = text if text.startswith("simm-") else f"simm-{text}"
            path = MODELS_DIR / f"{name}.toml"
            if not path.exists():
                raise ModelError(f"unknown SIMM version '{text}'", file=str(path))
        raw, file = io.read_toml(path), str(path)
    meta = raw.get("meta", {})
    params = SimmParams(version=str(meta.get("version", "")), source=str(meta.get("source", "")), raw=raw, file=file)
    # validate the tables now so that a bad file fails at load time, naming the key
    for h in HORIZONS:
        params.bucket_table("equity.delta.risk_weight", h)
        params.bucket_table("equity.vega.risk_weight", h)
        params.scalar("equity.vega.historical_volatility_ratio", h)
        params.scalar("general.vega_sigma_days", h)
        params.scalar("general.curvature_scale_days", h)
    params.bucket_table("equity.intra_bucket_correlation")
    params.bucket_table("equity.delta.concentration_threshold")
    params.bucket_table("equity.vega.concentration_threshold")
    params.inter_bucket()
    params.scalar("general.delta_confidence")
    params.scalar("general.curvature_confidence")
    return params


# --------------------------------------------------------------------------------------------------- CRIF input
def normalize_crif(crif: pd.DataFrame | list[dict[str, Any]]) -> pd.DataFrame:
    """Return the CRIF with canonical column names and clean types.

    Parameters
    ----------
    crif : DataFrame or list of dict
        Rows with ProductClass, RiskType, Qualifier, Bucket, Label1, Label2, AmountUSD (or the lower-case /
        snake-case names of the published case files). Label1/Label2 may be missing (taken as empty).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CRIF_COLUMNS`; Bucket as str (``"Residual"`` normalised), AmountUSD float.
    """
    df = pd.DataFrame(crif).copy()
    rename = {}
    for col in df.columns:
        key = str(col).strip()
        canon = _ALIASES.get(key.lower().replace(" ", ""), _ALIASES.get(key.lower()))
        if canon is not None:
            rename[col] = canon
    df = df.rename(columns=rename)
    for col in ("Label1", "Label2"):
        if col not in df.columns:
            df[col] = ""
    for col in CRIF_COLUMNS:
        if col not in df.columns:
            raise InputError("missing CRIF column", file="<CRIF>", column=col)
    df = df[CRIF_COLUMNS].copy()
    df["Label1"] = df["Label1"].fillna("").astype(str)
    df["Label2"] = df["Label2"].fillna("").astype(str)
    df["Qualifier"] = df["Qualifier"].astype(str)
    df["ProductClass"] = df["ProductClass"].astype(str)
    df["RiskType"] = df["RiskType"].astype(str)
    df["Bucket"] = [_bucket_name(b) for b in df["Bucket"]]
    amounts = pd.to_numeric(df["AmountUSD"], errors="coerce")
    bad = amounts.isna() | ~np.isfinite(amounts.fillna(0.0))
    if bad.any():
        raise InputError("AmountUSD is not a finite number", file="<CRIF>", row=df.index[bad][0], column="AmountUSD")
    df["AmountUSD"] = amounts.astype(float)
    unknown = ~df["RiskType"].isin(list(RISK_TYPES))
    if unknown.any():
        row = df.index[unknown][0]
        raise InputError(f"unsupported risk type '{df.loc[row, 'RiskType']}' (supported: {', '.join(RISK_TYPES)})",
                         file="<CRIF>", row=row, column="RiskType")
    return df


def _bucket_name(b: Any) -> str:
    if isinstance(b, float) and b.is_integer():
        return str(int(b))
    text = str(b).strip()
    if text.lower() == "residual":
        return "Residual"
    if text.endswith(".0") and text[:-2].isdigit():
        return text[:-2]
    return text


# --------------------------------------------------------------------------------------------------- results
@dataclass
class SimmResult:
    """SIMM of one CRIF at one horizon.

    Attributes
    ----------
    total : float
        Total SIMM (USD): sum over product classes.
    horizon : str
        ``"10d"`` or ``"1d"``.
    version : str
        SIMM version of the parameters.
    product_classes : dict[str, float]
        SIMM per product class (USD).
    breakdown : pandas.DataFrame
        Tidy rows ``product_class, risk_class, measure, bucket, amount`` (USD); ``bucket`` is ``"All"`` for the
        measure total; measures Delta, Vega, Curvature and ``"All"`` (risk class margin).
    """

    total: float
    horizon: str
    version: str
    product_classes: dict[str, float]
    breakdown: pd.DataFrame

    def measure(self, measure: str, risk_class: str = "Equity") -> float:
        """Margin of a measure (Delta, Vega, Curvature) summed over product classes (USD)."""
        b = self.breakdown
        sel = (b["measure"] == measure) & (b["risk_class"] == risk_class) & (b["bucket"] == "All")
        return float(b.loc[sel, "amount"].sum())


# --------------------------------------------------------------------------------------------------- aggregation
def _aggregate_buckets(
    ws: dict[str, np.ndarray],
    cr: dict[str, np.ndarray],
    rho: dict[str, np.ndarray],
    gamma_names: list[str],
    gamma: np.ndarray,
    residual: str,
) -> tuple[float, dict[str, float]]:
    """Delta/vega aggregation: bucket K_b from weighted sensitivities, then across buckets, plus residual.

    ``rho[b]`` is the (n_b, n_b) correlation matrix of the bucket's risk factors (diagonal ignored).
    """
    k_b: dict[str, float] = {}
    s_b: dict[str, float] = {}
    for b, w in ws.items():
        cb = cr[b]
        f = np.minimum.outer(cb, cb) / np.maximum.outer(cb, cb)
        corr = rho[b] * f
        np.fill_diagonal(corr, 1.0)
        k2 = float(w @ corr @ w)
        k = math.sqrt(max(k2, 0.0))
        k_b[b] = k
        s_b[b] = max(min(float(w.sum()), k), -k)
    total2 = 0.0
    regular = [b for b in k_b if b != residual]
    for i, b in enumerate(regular):
        total2 += k_b[b] ** 2
        for c in regular[:i]:
            total2 += 2.0 * _gamma(gamma_names, gamma, b, c) * s_b[b] * s_b[c]
    margin = math.sqrt(max(total2, 0.0)) + k_b.get(residual, 0.0)
    return margin, k_b


def _gamma(names: list[str], mat: np.ndarray, b: str, c: str) -> float:
    try:
        return float(mat[names.index(b), names.index(c)])
    except ValueError as exc:
        raise InputError(f"unknown equity bucket '{b if b not in names else c}'", file="<CRIF>",
                         column="Bucket") from exc


def _curvature(
    cvr: dict[str, np.ndarray],
    rho: dict[str, np.ndarray],
    gamma_names: list[str],
    gamma: np.ndarray,
    residual: str,
    q995: float,
) -> tuple[float, dict[str, float]]:
    """Curvature: rho^2 within a bucket, gamma^2 across, lambda from theta; the residual bucket alone."""

    def lam(theta: float) -> float:
        return (q995**2 - 1.0) * (1.0 + theta) - theta

    k_b: dict[str, float] = {}
    s_b: dict[str, float] = {}
    for b, v in cvr.items():
        corr = rho[b] ** 2
        np.fill_diagonal(corr, 1.0)
        k = math.sqrt(max(float(v @ corr @ v), 0.0))
        k_b[b] = k
        s_b[b] = max(min(float(v.sum()), k), -k)
    regular = [b for b in cvr if b != residual]
    margin = 0.0
    total_sum = sum(float(cvr[b].sum()) for b in regular)
    total_abs = sum(float(np.abs(cvr[b]).sum()) for b in regular)
    if regular and total_abs > 0.0:
        theta = min(total_sum / total_abs, 0.0)
        agg = 0.0
        for i, b in enumerate(regular):
            agg += k_b[b] ** 2
            for c in regular[:i]:
                agg += 2.0 * _gamma(gamma_names, gamma, b, c) ** 2 * s_b[b] * s_b[c]
        margin = max(total_sum + lam(theta) * math.sqrt(max(agg, 0.0)), 0.0)
    if residual in cvr:
        r_sum = float(cvr[residual].sum())
        r_abs = float(np.abs(cvr[residual]).sum())
        if r_abs > 0.0:
            theta = min(r_sum / r_abs, 0.0)
            margin += max(r_sum + lam(theta) * k_b[residual], 0.0)
    return margin, k_b


def equity_margin(rows: pd.DataFrame, params: SimmParams, horizon: str) -> dict[str, Any]:
    """Equity risk-class margin of normalised CRIF rows of one product class.

    Parameters
    ----------
    rows : pandas.DataFrame
        Normalised CRIF rows (see :func:`normalize_crif`) with RiskType Risk_Equity / Risk_EquityVol.
    params : SimmParams
        Parameters of the SIMM version.
    horizon : {"10d", "1d"}
        Calibration horizon.

    Returns
    -------
    dict
        ``{"Delta": float, "Vega": float, "Curvature": float, "All": float, "buckets": {measure: {bucket: K_b}}}``
        in USD; a measure without sensitivities is absent.
    """
    res = params.residual
    buckets = set(params.buckets)
    bad = ~rows["Bucket"].isin(buckets)
    if bad.any():
        row = rows.index[bad][0]
        raise InputError(f"unknown equity bucket '{rows.loc[row, 'Bucket']}'", file="<CRIF>", row=row,
                         column="Bucket")
    rho_b = params.bucket_table("equity.intra_bucket_correlation")
    gamma_names, gamma = params.inter_bucket()
    conc = params.concentration_on(horizon)
    out: dict[str, Any] = {"buckets": {}}

    delta = rows[rows["RiskType"] == "Risk_Equity"]
    if len(delta):
        rw = params.bucket_table("equity.delta.risk_weight", horizon)
        thr = params.bucket_table("equity.delta.concentration_threshold")
        net = delta.groupby(["Bucket", "Qualifier"], sort=True)["AmountUSD"].sum()
        ws: dict[str, np.ndarray] = {}
        cr: dict[str, np.ndarray] = {}
        for b, grp in net.groupby(level=0, sort=True):
            s = grp.to_numpy(dtype=float)
            c = np.maximum(1.0, np.sqrt(np.abs(s) / thr[b])) if conc else np.ones_like(s)
            ws[str(b)] = rw[str(b)] * s * c
            cr[str(b)] = c
        rho = {b: np.full((len(w), len(w)), rho_b[b]) for b, w in ws.items()}
        out["Delta"], out["buckets"]["Delta"] = _aggregate_buckets(ws, cr, rho, gamma_names, gamma, res)

    vega = rows[rows["RiskType"] == "Risk_EquityVol"]
    if len(vega):
        rw_d = params.bucket_table("equity.delta.risk_weight", horizon)
        vrw = params.bucket_table("equity.vega.risk_weight", horizon)
        vthr = params.bucket_table("equity.vega.concentration_threshold")
        hvr = params.scalar("equity.vega.historical_volatility_ratio", horizon)
        alpha = float(norm.ppf(params.scalar("general.delta_confidence")))
        sigma_days = params.scalar("general.vega_sigma_days", horizon)
        sf_days = params.scalar("general.curvature_scale_days", horizon)
        sf_factor = params.scalar("general.curvature_factor")
        no_curv = {str(b) for b in params.raw.get("equity", {}).get("no_curvature_buckets", [])}
        v = vega.copy()
        v["sigma"] = [rw_d[b] * math.sqrt(365.0 / sigma_days) / alpha for b in v["Bucket"]]
        days = []
        for idx, lab in zip(v.index, v["Label1"]):
            try:
                days.append(params.tenor_days(lab))
            except InputError as exc:
                raise InputError(exc.reason, file="<CRIF>", row=idx, column="Label1") from exc
        v["sf"] = [sf_factor * min(1.0, sf_days / d) for d in days]
        v["vr"] = v["sigma"] * v["AmountUSD"]
        v["cvr"] = v["sf"] * v["sigma"] * v["AmountUSD"]
        per_q = v.groupby(["Bucket", "Qualifier"], sort=True)[["vr", "cvr"]].sum()
        ws, cr, cvr = {}, {}, {}
        for b, grp in per_q.groupby(level=0, sort=True):
            b = str(b)
            vr = hvr * grp["vr"].to_numpy(dtype=float)
            c = np.maximum(1.0, np.sqrt(np.abs(vr) / vthr[b])) if conc else np.ones_like(vr)
            ws[b] = vrw[b] * vr * c
            cr[b] = c
            cv = grp["cvr"].to_numpy(dtype=float)
            cvr[b] = np.zeros_like(cv) if b in no_curv else cv
        rho = {b: np.full((len(w), len(w)), rho_b[b]) for b, w in ws.items()}
        out["Vega"], out["buckets"]["Vega"] = _aggregate_buckets(ws, cr, rho, gamma_names, gamma, res)
        q995 = float(norm.ppf(params.scalar("general.curvature_confidence")))
        out["Curvature"], out["buckets"]["Curvature"] = _curvature(cvr, rho, gamma_names, gamma, res, q995)
    out["All"] = sum(out.get(m, 0.0) for m in ("Delta", "Vega", "Curvature"))
    return out


def _fx_group(ccy: str, high_vol: set[str]) -> int:
    return 1 if ccy in high_vol else 0


def _fx_category(ccy: str, categories: list[list[str]]) -> int:
    for i, members in enumerate(categories):
        if ccy in members:
            return i
    return len(categories)


def _fx_pair(q: str, idx: Any) -> tuple[str, str]:
    text = q.replace("/", "").strip().upper()
    if len(text) != 6 or not text.isalpha():
        raise InputError(f"FX vol qualifier must be a currency pair such as EURUSD, got '{q}'", file="<CRIF>", row=idx,
                         column="Qualifier")
    return text[:3], text[3:]


def fx_margin(
    rows: pd.DataFrame, params: SimmParams, horizon: str, calculation_currency: str = "USD"
) -> dict[str, Any]:
    """FX risk-class margin of normalised CRIF rows of one product class.

    Delta (``Risk_FX``, qualifier a currency, USD change for a 1% move of its value; the calculation currency is
    ignored): ``WS_k = RW s_k CR_k``, RW and correlation by volatility group (regular / high) of the calculation
    currency and the qualifier; one bucket. Vega (``Risk_FXVol``, qualifier a pair, Label1 tenor):
    ``sigma = RW(pair) sqrt(365/d)/Phi^-1(0.99)``, ``VR = HVR sum sigma vega``, concentration by pair category,
    correlation ``fx.vega.correlation`` between pairs. Curvature from vega like equity (rho^2, no HVR).

    Parameters
    ----------
    rows : pandas.DataFrame
        Normalised CRIF rows with RiskType Risk_FX / Risk_FXVol.
    params : SimmParams
        Parameters (need an ``[fx]`` table).
    horizon : {"10d", "1d"}
        Calibration horizon.
    calculation_currency : str, default "USD"
        Currency of the calculation (its own FX delta is not a risk).

    Returns
    -------
    dict
        ``{"Delta", "Vega", "Curvature", "All"}`` in USD (absent measures omitted) and ``"buckets"``.
    """
    high = {str(c) for c in params._get("fx.high_vol_currencies")}
    cats = [list(map(str, c)) for c in params._get("fx.delta.concentration_categories")]
    rw_mat = params._get("fx.delta.risk_weight")
    if horizon not in rw_mat:
        raise ModelError(f"missing horizon '{horizon}'", file=params.file, key="fx.delta.risk_weight")
    rw = np.asarray(rw_mat[horizon], dtype=float)
    g_calc = _fx_group(calculation_currency, high)
    conc = params.concentration_on(horizon)
    out: dict[str, Any] = {"buckets": {}}
    none: tuple[list[str], np.ndarray] = ([], np.zeros((0, 0)))

    delta = rows[(rows["RiskType"] == "Risk_FX") & (rows["Qualifier"].str.upper() != calculation_currency.upper())]
    if (rows["RiskType"] == "Risk_FX").any():
        net = delta.groupby(delta["Qualifier"].str.upper(), sort=True)["AmountUSD"].sum()
        ccys = list(net.index)
        s = net.to_numpy(dtype=float)
        thr = np.asarray(params._get("fx.delta.concentration_threshold"), dtype=float)
        groups = np.array([_fx_group(c, high) for c in ccys], dtype=int)
        weights = rw[g_calc, groups] if len(ccys) else np.zeros(0)
        t = np.array([thr[_fx_category(c, cats)] for c in ccys]) if len(ccys) else np.zeros(0)
        c = np.maximum(1.0, np.sqrt(np.abs(s) / t)) if conc and len(ccys) else np.ones_like(s)
        key = "correlation_high_vol_calc_ccy" if g_calc == 1 else "correlation_regular_calc_ccy"
        corr_g = np.asarray(params._get(f"fx.delta.{key}"), dtype=float)
        rho = {"FX": corr_g[np.ix_(groups, groups)]}
        out["Delta"], out["buckets"]["Delta"] = _aggregate_buckets({"FX": weights * s * c}, {"FX": c}, rho, *none,
                                                                   residual="Residual")

    vega = rows[rows["RiskType"] == "Risk_FXVol"]
    if len(vega):
        alpha = float(norm.ppf(params.scalar("general.delta_confidence")))
        sigma_days = params.scalar("general.vega_sigma_days", horizon)
        sf_days = params.scalar("general.curvature_scale_days", horizon)
        sf_factor = params.scalar("general.curvature_factor")
        hvr = params.scalar("fx.vega.historical_volatility_ratio", horizon)
        vrw = params.scalar("fx.vega.risk_weight", horizon)
        vthr = np.asarray(params._get("fx.vega.concentration_threshold"), dtype=float)
        v_corr = params.scalar("fx.vega.correlation")
        v = vega.copy()
        pairs, sig, sfs = [], [], []
        for idx, q, lab in zip(v.index, v["Qualifier"], v["Label1"]):
            c1, c2 = _fx_pair(q, idx)
            pairs.append(c1 + c2)
            sig.append(rw[_fx_group(c2, high), _fx_group(c1, high)] * math.sqrt(365.0 / sigma_days) / alpha)
            try:
                d = params.tenor_days(lab)
            except InputError as exc:
                raise InputError(exc.reason, file="<CRIF>", row=idx, column="Label1") from exc
            sfs.append(sf_factor * min(1.0, sf_days / d))
        v["pair"] = pairs
        v["vr"] = np.asarray(sig) * v["AmountUSD"].to_numpy(dtype=float)
        v["cvr"] = np.asarray(sfs) * v["vr"]
        per = v.groupby("pair", sort=True)[["vr", "cvr"]].sum()
        vr = hvr * per["vr"].to_numpy(dtype=float)
        pair_cat = []
        for pair in per.index:
            a, b = sorted((_fx_category(pair[:3], cats), _fx_category(pair[3:], cats)))
            pair_cat.append({(0, 0): 0, (0, 1): 1, (0, 2): 2, (1, 1): 3, (1, 2): 4}.get((a, b), 5))
        t = vthr[pair_cat]
        c = np.maximum(1.0, np.sqrt(np.abs(vr) / t)) if conc else np.ones_like(vr)
        n = len(vr)
        rho = {"FX": np.full((n, n), v_corr)}
        out["Vega"], out["buckets"]["Vega"] = _aggregate_buckets({"FX": vrw * vr * c}, {"FX": c}, rho, *none,
                                                                 residual="Residual")
        q995 = float(norm.ppf(params.scalar("general.curvature_confidence")))
        out["Curvature"], out["buckets"]["Curvature"] = _curvature(
            {"FX": per["cvr"].to_numpy(dtype=float)}, rho, *none, residual="Residual", q995=q995)
    out["All"] = sum(out.get(m, 0.0) for m in ("Delta", "Vega", "Curvature"))
    return out


def simm_margin(
    crif: pd.DataFrame | list[dict[str, Any]],
    params: SimmParams | str | Path = "2.5",
    horizon: str = "10d",
    calculation_currency: str = "USD",
) -> SimmResult:
    """ISDA SIMM of a CRIF (equity and FX risk classes), per product class and in total.

    Parameters
    ----------
    crif : DataFrame or list of dict
        CRIF rows: ProductClass, RiskType (Risk_Equity / Risk_FX: USD change for +1% spot; Risk_EquityVol /
        Risk_FXVol: USD change per vol point, Label1 = expiry tenor), Qualifier, Bucket, Label1, Label2, AmountUSD.
        Lower-case names accepted.
        Rows are not deduplicated: a row listed twice counts twice.
    params : SimmParams, str or Path, default "2.5"
        Parameters, a shipped version or a parameter file (see :func:`load_simm_params`).
    horizon : {"10d", "1d"}, default "10d"
        Margin period of risk of the calibration (1-day: 1-day weights, no concentration).
    calculation_currency : str, default "USD"
        Calculation currency (FX delta to it is not a risk; selects the FX correlation and weight group).

    Returns
    -------
    SimmResult
        Total (USD) with a breakdown per product class, risk class, measure and bucket.
    """
    if horizon not in HORIZONS:
        raise InputError(f"horizon must be one of {HORIZONS}, got '{horizon}'")
    p = load_simm_params(params)
    df = normalize_crif(crif)
    rows: list[dict[str, Any]] = []
    pcs: dict[str, float] = {}
    df["RiskClass"] = [RISK_TYPES[rt][0] for rt in df["RiskType"]]
    for pc, grp in df.groupby("ProductClass", sort=True):
        rc_margin: dict[str, float] = {}
        for rc in ("Equity", "FX"):
            sub = grp[grp["RiskClass"] == rc]
            if sub.empty:
                continue
            res = equity_margin(sub, p, horizon) if rc == "Equity" else fx_margin(sub, p, horizon,
                                                                                    calculation_currency)
            rc_margin[rc] = res["All"]
            for m in ("Delta", "Vega", "Curvature"):
                if m in res:
                    rows.append(dict(product_class=pc, risk_class=rc, measure=m, bucket="All", amount=res[m]))
                    for b, k in res["buckets"].get(m, {}).items():
                        rows.append(dict(product_class=pc, risk_class=rc, measure=m, bucket=b, amount=k))
            rows.append(dict(product_class=pc, risk_class=rc, measure="All", bucket="All", amount=res["All"]))
        names = list(rc_margin)
        total2 = 0.0
        for i, a in enumerate(names):
            total2 += rc_margin[a] ** 2
            for b in names[:i]:
                total2 += 2.0 * p.risk_class_correlation(a, b) * rc_margin[a] * rc_margin[b]
        pcs[str(pc)] = math.sqrt(max(total2, 0.0))
    breakdown = pd.DataFrame(rows, columns=["product_class", "risk_class", "measure", "bucket", "amount"])
    return SimmResult(total=float(sum(pcs.values())), horizon=horizon, version=p.version, product_classes=pcs,
                      breakdown=breakdown)
