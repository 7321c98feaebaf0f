"""Reader and checker for the ISDA SIMM parameter tables transcribed from ORE (models/tools/simm_ore/v*.json).

Run ``python models/tools/simm_ore_check.py`` for a report per version: structural problems (must be none),
the smallest eigenvalue of every correlation matrix (PSD-ness) and the comparison with the equity/FX tables of
models/simm-2.5.toml and models/simm-2.6.toml. The schema is described in models/tools/simm_ore/README.md.
"""

from __future__ import annotations

import copy
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = ROOT / "models" / "tools" / "simm_ore"
VERSIONS = ("2.5", "2.6", "2.7", "2.8")
# further ORE classes kept as their own files (see README): "2.6.5" is what ORE's version parser calls "2.7"
EXTRA_VERSIONS = ("2.6.5",)
MPORS = ("10", "1")
EQUITY_BUCKETS = [str(i) for i in range(1, 13)] + ["Residual"]
TOL = 1e-12


def json_path(version: str) -> Path:
    """Path of the JSON file of one SIMM version ("2.5" -> .../v2_5.json)."""
    return DATA_DIR / f"v{version.replace('.', '_')}.json"


def load(version: str) -> dict[str, Any]:
    """Parsed JSON of one SIMM version."""
    with open(json_path(version)) as f:
        data: dict[str, Any] = json.load(f)
    return data


def table(data: dict[str, Any], name: str, mpor: str | int, *path: str) -> Any:
    """One table for a calibration horizon: ``data["mpor"][mpor][name]`` if ORE sets it per horizon, else
    ``data[name]``; then down ``path`` (e.g. risk type, bucket). KeyError if absent."""
    per = data["mpor"][str(mpor)]
    node = per[name] if name in per else data[name]
    for key in path:
        node = node[key]
    return node


def variant(data: dict[str, Any], name: str) -> dict[str, Any]:
    """The tables of an ORE variant of this version (``data["variants"][name]``): a deep copy with the
    variant's overrides applied. Override keys are dot-separated paths from the top of the file.
    KeyError if the variant or an override path does not exist."""
    out = copy.deepcopy(data)
    out.pop("variants", None)
    var = data["variants"][name]
    for path, value in var["overrides"].items():
        *parents, leaf = path.split(".")
        node = out
        for key in parents:
            node = node[key]
        if leaf not in node:
            raise KeyError(f"variant {name}: override {path} names no existing table entry")
        node[leaf] = value
    out["source"] = {**data["source"], "variant": name, "variant_source": var["source"]}
    return out


def as_matrix(nested: dict[str, dict[str, float]]) -> tuple[list[str], np.ndarray]:
    """Nested {row: {col: value}} -> (axis, square array). ValueError if rows/columns differ."""
    axis = list(nested)
    for r in axis:
        if list(nested[r]) != axis:
            raise ValueError(f"row {r!r}: columns {list(nested[r])} differ from rows {axis}")
    return axis, np.array([[float(nested[r][c]) for c in axis] for r in axis])


def _is_square(nested: Any) -> bool:
    return (isinstance(nested, dict) and bool(nested) and all(isinstance(v, dict) for v in nested.values())
            and all(list(v) == list(nested) for v in nested.values()))


def _scopes(data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, mapping) for the common tables and each horizon's own tables."""
    return [("", data)] + [(f"mpor[{m}].", data["mpor"][m]) for m in MPORS]


def correlation_matrices(data: dict[str, Any]) -> dict[str, tuple[list[str], np.ndarray]]:
    """Every correlation matrix with a unit diagonal: riskClassCorrelation, intra-/interBucketCorrelation of
    each risk type, and any other per-bucket matrix (e.g. credit/commodity vol), wherever it sits."""
    out: dict[str, tuple[list[str], np.ndarray]] = {}
    for label, scope in _scopes(data):
        if "riskClassCorrelation" in scope:
            out[label + "riskClassCorrelation"] = as_matrix(scope["riskClassCorrelation"])
        for key in ("intraBucketCorrelation", "interBucketCorrelation"):
            for rt, tab in scope.get(key, {}).items():
                if _is_square(tab):
                    out[f"{label}{key}.{rt}"] = as_matrix(tab)
    return out


def group_correlations(data: dict[str, Any]) -> dict[str, tuple[list[str], np.ndarray]]:
    """FX delta correlations indexed by currency group (diagonal is not 1): fxRegVolCorrelation,
    fxHighVolCorrelation (per calculation-currency group)."""
    out: dict[str, tuple[list[str], np.ndarray]] = {}
    for label, scope in _scopes(data):
        for key in ("fxRegVolCorrelation", "fxHighVolCorrelation"):
            if key in scope:
                out[label + key] = as_matrix(scope[key])
    return out


def _walk_numbers(node: Any, path: str):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk_numbers(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk_numbers(v, f"{path}[{i}]")
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield path, float(node)


def check(data: dict[str, Any]) -> list[str]:
    """Structural problems of one version's tables (empty list: none). Checks: correlation matrices symmetric
    with unit diagonal; every correlation in [-1, 1]; every bucket (and tenor) of a risk type has a weight and
    a concentration threshold; curvature weights on the vega tenors; inter-bucket axes = non-residual buckets."""
    problems: list[str] = []
    for name, (axis, m) in correlation_matrices(data).items():
        if not np.allclose(m, m.T, atol=TOL, rtol=0):
            i, j = np.unravel_index(np.argmax(np.abs(m - m.T)), m.shape)
            problems.append(f"{name}: not symmetric at ({axis[i]}, {axis[j]}): {m[i, j]} vs {m[j, i]}")
        bad = [a for a, x in zip(axis, np.diag(m)) if abs(x - 1.0) > TOL]
        if bad:
            problems.append(f"{name}: diagonal not 1 at {bad}")
    for name, (_axis, m) in group_correlations(data).items():
        if not np.allclose(m, m.T, atol=TOL, rtol=0):
            problems.append(f"{name}: not symmetric")
    for label, scope in _scopes(data):
        corr = {k: scope[k] for k in ("riskClassCorrelation", "intraBucketCorrelation", "interBucketCorrelation",
                                      "fxRegVolCorrelation", "fxHighVolCorrelation", "scalarCorrelations")
                if k in scope}
        for path, x in _walk_numbers(corr, label.rstrip(".")):
            if not -1.0 <= x <= 1.0:
                problems.append(f"{path}: correlation {x} outside [-1, 1]")
    buckets = data["mapBuckets"]
    labels = data["mapLabels_1"]
    for m in MPORS:
        per = data["mpor"][m]
        for rt, tab in per["rwBucket"].items():
            missing = [b for b in buckets.get(rt, []) if b not in tab]
            extra = [b for b in tab if b not in buckets.get(rt, [])]
            if rt not in buckets or missing or extra:
                problems.append(f"mpor[{m}].rwBucket.{rt}: missing {missing}, not a bucket {extra}")
        for rt in buckets:
            vol_flat = rt in per["rwRiskType"]
            if rt not in per["rwBucket"] and rt not in per["rwLabel_1"] and not vol_flat:
                problems.append(f"mpor[{m}]: risk type {rt} has buckets but no risk weight")
        for rt, tab in per["rwLabel_1"].items():
            for b in buckets[rt]:
                if b not in tab:
                    problems.append(f"mpor[{m}].rwLabel_1.{rt}: bucket {b} has no weights")
                elif list(tab[b]) != labels[rt]:
                    problems.append(f"mpor[{m}].rwLabel_1.{rt}.{b}: tenors {list(tab[b])} != {labels[rt]}")
        for rt, tab in per["curvatureWeights"].items():
            if list(tab) != labels[rt]:
                problems.append(f"mpor[{m}].curvatureWeights.{rt}: tenors {list(tab)} != {labels[rt]}")
        rwfx = per["rwFX"]
        groups = sorted(data["ccyGroups"])
        if sorted(rwfx) != groups or any(sorted(r) != groups for r in rwfx.values()):
            problems.append(f"mpor[{m}].rwFX: groups {sorted(rwfx)} != ccyGroups {groups}")
    for key in ("interBucketCorrelation",):
        for rt, tab in data.get(key, {}).items():
            if _is_square(tab):
                want = [b for b in buckets[rt] if b != "Residual"]
                if list(tab) != want:
                    problems.append(f"{key}.{rt}: axis {list(tab)} != buckets {want}")
    for name in data.get("variants", {}):
        try:
            problems += [f"variant {name}: {p}" for p in check(variant(data, name))]
        except KeyError as exc:
            problems.append(str(exc))
    conc = data["concentration"]
    for rt, tab in conc["bucketedThresholds"].items():
        missing = [b for b in buckets.get(rt, []) if b not in tab]
        if missing:
            problems.append(f"concentration.bucketedThresholds.{rt}: buckets {missing} have no threshold")
    for rt, cats in (("Risk_IRCurve", "irCategories"), ("Risk_IRVol", "irCategories"), ("Risk_FX", "fxCategories")):
        tab = conc["bucketedThresholds"].get(rt)
        if tab is None or sorted(tab) != sorted(conc[cats]):
            problems.append(f"concentration.bucketedThresholds.{rt}: categories differ from {cats}")
    return problems


def psd_report(data: dict[str, Any]) -> dict[str, float]:
    """Smallest eigenvalue of every correlation matrix (negative: not positive semi-definite)."""
    return {name: float(np.linalg.eigvalsh(m).min()) for name, (_, m) in correlation_matrices(data).items()}


def equity_tables(data: dict[str, Any]) -> dict[str, Any]:
    """Equity tables of one version in the layout of validation/cases/simm/equity_parameters_v2.5.json."""
    inter_axis, inter = as_matrix(data["interBucketCorrelation"]["Risk_Equity"])
    intra = data["intraBucketCorrelation"]["Risk_Equity"]
    conc = data["concentration"]["bucketedThresholds"]
    return {
        "buckets": EQUITY_BUCKETS,
        "delta_risk_weight": {f"{m}d": [table(data, "rwBucket", m, "Risk_Equity", b) for b in EQUITY_BUCKETS]
                              for m in MPORS},
        "vega_risk_weight": {f"{m}d": [table(data, "rwBucket", m, "Risk_EquityVol", b) for b in EQUITY_BUCKETS]
                             for m in MPORS},
        "historical_volatility_ratio": {f"{m}d": table(data, "historicalVolatilityRatios", m, "Risk_EquityVol")
                                        for m in MPORS},
        # ORE leaves Residual out of intraBucketCorrelation (0 in the calculator)
        "intra_bucket_correlation": [intra.get(b, 0.0) for b in EQUITY_BUCKETS],
        "inter_bucket_buckets": inter_axis,
        "inter_bucket_correlation": inter.tolist(),
        "delta_concentration_threshold_usd_per_pct": [conc["Risk_Equity"][b] for b in EQUITY_BUCKETS],
        "vega_concentration_threshold_usd": [conc["Risk_EquityVol"][b] for b in EQUITY_BUCKETS],
    }


def fx_tables(data: dict[str, Any]) -> dict[str, Any]:
    """FX tables of one version in the layout of models/simm-*.toml [fx]."""
    g = sorted(data["ccyGroups"])
    conc = data["concentration"]

    def m2(nested: dict[str, dict[str, float]]) -> list[list[float]]:
        return [[nested[a][b] for b in g] for a in g]

    cats = sorted(conc["fxCategories"])
    return {
        "high_vol_currencies": data["ccyGroups"]["1"],
        "delta": {
            "correlation_regular_calc_ccy": m2(data["fxRegVolCorrelation"]),
            "correlation_high_vol_calc_ccy": m2(data["fxHighVolCorrelation"]),
            "concentration_categories": [conc["fxCategories"][c] for c in cats if conc["fxCategories"][c]],
            "concentration_threshold": [conc["bucketedThresholds"]["Risk_FX"][c] for c in cats],
            "risk_weight": {f"{m}d": m2(table(data, "rwFX", m)) for m in MPORS},
        },
        "vega": {
            "correlation": data["scalarCorrelations"]["fxCorr"],
            "concentration_threshold": [conc["bucketedThresholds"]["Risk_FXVol"][c]
                                        for c in sorted(conc["bucketedThresholds"]["Risk_FXVol"], key=int)],
            "risk_weight": {f"{m}d": table(data, "rwRiskType", m, "Risk_FXVol") for m in MPORS},
            "historical_volatility_ratio": {f"{m}d": table(data, "historicalVolatilityRatios", m, "Risk_FXVol")
                                            for m in MPORS},
        },
    }


def diff(expected: Any, got: Any, path: str = "") -> list[str]:
    """Differences between two nested tables (numbers compared to 1e-9 relative), as 'path: a != b'."""
    if isinstance(expected, dict) and isinstance(got, dict):
        out = [f"{path}.{k}: missing" for k in expected if k not in got]
        for k in expected:
            if k in got:
                out += diff(expected[k], got[k], f"{path}.{k}")
        return out
    if isinstance(expected, list) and isinstance(got, list):
        if len(expected) != len(got):
            return [f"{path}: length {len(expected)} != {len(got)}"]
        return [d for i, (a, b) in enumerate(zip(expected, got)) for d in diff(a, b, f"{path}[{i}]")]
    if isinstance(expected, (int, float)) and isinstance(got, (int, float)):
        return [] if abs(expected - got) <= 1e-9 * max(1.0, abs(expected)) else [f"{path}: {expected} != {got}"]
    return [] if expected == got else [f"{path}: {expected!r} != {got!r}"]


def compare_model_file(data: dict[str, Any], toml_path: Path) -> list[str]:
    """Differences between a models/simm-*.toml's equity and FX tables and this JSON's (file values first)."""
    with open(toml_path, "rb") as f:
        model = tomllib.load(f)
    eq = {k: v for k, v in model["equity"].items() if k not in ("no_curvature_buckets", "delta", "vega")}
    eq["delta_risk_weight"] = model["equity"]["delta"]["risk_weight"]
    eq["delta_concentration_threshold_usd_per_pct"] = model["equity"]["delta"]["concentration_threshold"]
    eq["vega_risk_weight"] = model["equity"]["vega"]["risk_weight"]
    eq["vega_concentration_threshold_usd"] = model["equity"]["vega"]["concentration_threshold"]
    eq["historical_volatility_ratio"] = model["equity"]["vega"]["historical_volatility_ratio"]
    out = diff(eq, equity_tables(data), "equity")
    out += diff(model["fx"], fx_tables(data), "fx")
    rc = model["risk_class_correlation"]
    ours = data["riskClassCorrelation"]
    out += diff(rc["matrix"], [[ours[a][b] for b in rc["classes"]] for a in rc["classes"]], "risk_class_correlation")
    return out


def _category(qualifier: str, categories: dict[str, list[str]]) -> str:
    """ORE's category lookup: the category listing the qualifier, else the one with an empty list."""
    for cat, members in categories.items():
        if qualifier in members:
            return cat
    return next(cat for cat, members in categories.items() if not members)


def single_sensitivity_margin(data: dict[str, Any], sens: dict[str, Any], mpor: str) -> float:
    """SIMM margin of a portfolio holding one CRIF sensitivity (cross-check of the transcribed tables against
    published single-sensitivity unit-test figures, not a SIMM engine). ``sens``: risk_type, qualifier, bucket,
    label1, amount_usd. Delta: |s| RW CR (CR from the concentration thresholds, 10-day only); vega and curvature
    of one vol sensitivity: VR + max(CVR + lambda |CVR|, 0) (curvature times HVR_IR^-2 for IR). Vega
    concentration is not applied (use sensitivities below the vega thresholds). Returns USD."""
    from scipy.stats import norm

    rt, amount, bucket, tenor = sens["risk_type"], float(sens["amount_usd"]), sens.get("bucket"), sens.get("label1")
    conc = data["concentration"]
    thresholds = conc["bucketedThresholds"]
    ten_day = mpor == "10"
    if "Vol" not in rt:
        if rt == "Risk_IRCurve":
            rw = table(data, "rwLabel_1", mpor, rt, bucket, tenor)
            thr = thresholds[rt][_category(sens["qualifier"], conc["irCategories"])]
        elif rt == "Risk_Inflation":
            rw = table(data, "rwRiskType", mpor, rt)
            thr = thresholds["Risk_IRCurve"][_category(sens["qualifier"], conc["irCategories"])]
        elif rt == "Risk_BaseCorr":
            rw, thr = table(data, "rwRiskType", mpor, rt), float("inf")
        elif rt == "Risk_FX":
            raise ValueError("Risk_FX needs a calculation currency; not part of this cross-check")
        else:
            rw, thr = table(data, "rwBucket", mpor, rt, bucket), thresholds[rt][bucket]
        cr = max(1.0, (abs(amount) / thr) ** 0.5) if ten_day else 1.0
        return abs(amount) * rw * cr
    days = 14.0 if ten_day else 1.4
    alpha = float(norm.ppf(0.99))
    lam = float(norm.ppf(0.995)) ** 2 - 1.0
    scale, hvr, sigma = 1.0, 1.0, 1.0
    if rt in ("Risk_IRVol", "Risk_InflationVol"):
        rw = table(data, "rwRiskType", mpor, rt)
        scale = table(data, "hvr_ir", mpor) ** -2
    elif rt in ("Risk_CreditVol", "Risk_CreditVolNonQ"):
        rw = table(data, "rwRiskType", mpor, rt)
    else:
        hvr = table(data, "historicalVolatilityRatios", mpor, rt)
        if rt == "Risk_EquityVol":
            rw = table(data, "rwBucket", mpor, rt, bucket)
            delta_rw = table(data, "rwBucket", mpor, "Risk_Equity", bucket)
        elif rt == "Risk_CommodityVol":
            rw = table(data, "rwRiskType", mpor, rt)
            delta_rw = table(data, "rwBucket", mpor, "Risk_Commodity", bucket)
        else:  # Risk_FXVol: delta weight of the pair's two currency groups
            rw = table(data, "rwRiskType", mpor, rt)
            pair = sens["qualifier"]
            g1 = "1" if pair[:3] in data["ccyGroups"]["1"] else "0"
            g2 = "1" if pair[3:] in data["ccyGroups"]["1"] else "0"
            delta_rw = table(data, "rwFX", mpor, g1, g2)
        sigma = delta_rw * (365.0 / days) ** 0.5 / alpha
    vega = abs(rw * hvr * sigma * amount)
    cvr = table(data, "curvatureWeights", mpor, rt, tenor) * sigma * amount
    if rt == "Risk_EquityVol" and bucket == "12":
        cvr = 0.0  # no curvature for volatility indices
    return vega + max(cvr + lam * abs(cvr), 0.0) * scale


def check_cases(version: str, cases_path: Path) -> list[str]:
    """Compare single-sensitivity cases of a SIMM unit-test file (layout of validation/simm/full_seen.json:
    sensitivities by id, cases with expected {'10d', '1d'}) with ``single_sensitivity_margin``."""
    data = load(version)
    with open(cases_path) as f:
        cases = json.load(f)
    lines = []
    for case in cases["cases"]:
        if len(case["sensitivities"]) != 1:
            continue
        sens = cases["sensitivities"][case["sensitivities"][0]]
        if sens["risk_type"] == "Risk_FX":
            continue
        for m in MPORS:
            got = single_sensitivity_margin(data, sens, m)
            want = float(case["expected"][f"{m}d"])
            ok = abs(got - want) <= 1.0
            lines.append(f"{case['id']} {sens['risk_type']} {m}d: {got:.0f} vs {want:.0f} {'ok' if ok else 'DIFF'}")
    return lines


def report(version: str) -> str:
    """Text report for one version."""
    data = load(version)
    lines = [f"SIMM v{version}: {json_path(version).relative_to(ROOT)}"]
    problems = check(data)
    lines.append(f"  structural problems: {len(problems)}")
    lines += [f"    {p}" for p in problems]
    for name, ev in psd_report(data).items():
        lines.append(f"  min eigenvalue {name}: {ev:.6f}{'' if ev >= -1e-12 else '  (not PSD)'}")
    for name, var in data.get("variants", {}).items():
        lines.append(f"  variant {name}: overrides {var['overrides']}")
    toml_path = ROOT / "models" / f"simm-{version}.toml"
    if toml_path.exists():
        d = compare_model_file(data, toml_path)
        lines.append(f"  vs {toml_path.relative_to(ROOT)} (equity, FX, psi): {len(d)} differences")
        lines += [f"    {x}" for x in d]
    return "\n".join(lines)


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--cases"]:
        # python models/tools/simm_ore_check.py --cases FILE [VERSION]
        out = check_cases(args[2] if len(args) > 2 else "2.5", Path(args[1]))
        print("\n".join(out))
        print(f"{sum(x.endswith(' ok') for x in out)} of {len(out)} single-sensitivity figures within 1 USD")
    else:
        for v in args or [v for v in VERSIONS + EXTRA_VERSIONS if json_path(v).exists()]:
            print(report(v))
