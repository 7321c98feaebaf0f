"""Generate models/simm-<version>.toml for ISDA SIMM 2.5, 2.6, 2.7 and 2.8 (run: python models/tools/make_simm.py).

Input: the ORE-structured parameter tables in models/tools/simm_ore/v2_<x>.json (hand transcription of ORE,
OpenSourceRisk/Engine OREAnalytics/orea/simm/simmconfigurationisdav2_*.cpp and simmconcentrationisdav2_*.cpp;
paths and commits in each file's ``source`` block and in simm_ore/README.md). Output: the model-file layout read
by greeksmargin.methodologies.simm (sections general, risk_class_correlation, interest_rate, credit_q, credit_nonq,
equity, commodity, fx). v2.5 is checked against the ISDA unit tests in validation/cases/simm/.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tomli_w

HERE = Path(__file__).resolve().parent
MODELS = HERE.parent
H = {"10d": "10", "1d": "1"}
VERSIONS = {"2.5": "v2_5", "2.6": "v2_6", "2.7": "v2_7", "2.8": "v2_8"}
CLASSES = ["InterestRate", "CreditQualifying", "CreditNonQualifying", "Equity", "Commodity", "FX"]


def per_h(d: dict[str, Any], fn) -> dict[str, Any]:
    """``{"10d": fn(d["mpor"]["10"]), "1d": fn(d["mpor"]["1"])}``."""
    return {h: fn(d["mpor"][m]) for h, m in H.items()}


def matrix(table: dict[str, dict[str, float]], keys: list[str]) -> list[list[float]]:
    return [[float(table[a][b]) for b in keys] for a in keys]


def convert(d: dict[str, Any], version: str) -> dict[str, Any]:
    src = d["source"]
    sc = d["scalarCorrelations"]
    conc = d["concentration"]
    bt = conc["bucketedThresholds"]
    ir_tenors = d["mapLabels_1"]["Risk_IRCurve"]
    ir_b = d["mapBuckets"]["Risk_IRCurve"]
    cats = conc["irCategories"]  # "1" = all others
    crq_b = d["mapBuckets"]["Risk_CreditQ"]
    crnq_b = d["mapBuckets"]["Risk_CreditNonQ"]
    eq_b = d["mapBuckets"]["Risk_Equity"]
    cm_b = d["mapBuckets"]["Risk_Commodity"]
    non_res = [b for b in crq_b if b != "Residual"]
    eq_nonres = [b for b in eq_b if b != "Residual"]
    fxc = conc["fxCategories"]
    fx_vol_keys = sorted(conc["fxVolThresholdCategories"], key=int)
    model: dict[str, Any] = {
        "meta": {
            "name": f"simm-{version}",
            "methodology": "simm",
            "version": version,
            "description": f"ISDA SIMM v{version}: all risk classes (IR, CreditQ, CreditNonQ, Equity, Commodity, FX), "
                           "delta, vega, curvature, concentration; 10-day and 1-day",
            "source": (f"ISDA SIMM v{src['isda_version']} as encoded in ORE ({src['repository']}, class "
                       f"{src['ore_class']}): " + "; ".join(f"{k} {p} @ {src['commits'][k]}"
                                                            for k, p in src["paths"].items())
                       + f"; transcribed {src['transcribed']} into models/tools/simm_ore/{VERSIONS[version]}.json"),
            "effective_date": src.get("effective_date", ""),
            "notes": [
                "Concentration thresholds in USD (ORE lists USD mm): delta per bp (IR, credit) or per 1% (equity, "
                "commodity, FX); vega on the vega risk. 10-day only: the 1-day calibration has no concentration.",
                "Curvature SF(t) = curvature_factor * min(1, curvature_scale_days / t_days); t: w=7, m=365/12, y=365.",
                "sigma = RW * sqrt(365 / vega_sigma_days) / Phi^-1(delta_confidence) (10d: 14 days; 1d: 1.4 days).",
                "IR curvature margin scaled by HVR_IR^-2; inflation volatility is one risk factor per currency; "
                "cross-currency basis carries no concentration factor.",
                "Equity bucket 12 (volatility indices) has no curvature (CVR = 0).",
            ],
        },
        "general": {
            "horizons": ["10d", "1d"],
            "concentration": {"10d": True, "1d": False},
            "delta_confidence": 0.99,
            "curvature_confidence": 0.995,
            "vega_sigma_days": {"10d": 14.0, "1d": 1.4},
            "curvature_scale_days": {"10d": 14.0, "1d": 1.4},
            "curvature_factor": 0.5,
            "tenor_unit_days": {"d": 1.0, "w": 7.0, "m": "365/12", "y": 365.0},
            "residual_bucket": "Residual",
        },
        "risk_class_correlation": {"classes": CLASSES, "matrix": matrix(d["riskClassCorrelation"], CLASSES)},
        "interest_rate": {
            "tenors": ir_tenors,
            "buckets": ir_b,
            "bucket_names": {"1": "regular volatility", "2": "low volatility", "3": "high volatility"},
            "regular_vol_currencies": d["irBucketCurrencies"]["1"],
            "low_vol_currencies": d["irBucketCurrencies"]["2"],
            "sub_curves": d["mapLabels_2"]["Risk_IRCurve"],
            "tenor_correlation": matrix(d["intraBucketCorrelation"]["Risk_IRCurve"], ir_tenors),
            "sub_curve_correlation": sc["irSubCurveCorr"],
            "inflation_correlation": sc["infCorr"],
            "xccy_basis_correlation": sc["xccyCorr"],
            "inter_currency_correlation": sc["irInterCurrencyCorr"],
            "concentration_categories": [cats["2"], cats["3"], cats["4"]],
            "delta": {
                "risk_weight": per_h(d, lambda m: [[float(m["rwLabel_1"]["Risk_IRCurve"][b][t]) for t in ir_tenors]
                                                   for b in ir_b]),
                "inflation_risk_weight": per_h(d, lambda m: float(m["rwRiskType"]["Risk_Inflation"])),
                "xccy_basis_risk_weight": per_h(d, lambda m: float(m["rwRiskType"]["Risk_XCcyBasis"])),
                "concentration_threshold": [bt["Risk_IRCurve"][k] for k in ("2", "3", "4", "1")],
            },
            "vega": {
                "risk_weight": per_h(d, lambda m: float(m["rwRiskType"]["Risk_IRVol"])),
                "inflation_vol_risk_weight": per_h(d, lambda m: float(m["rwRiskType"]["Risk_InflationVol"])),
                "historical_volatility_ratio": per_h(d, lambda m: float(m["hvr_ir"])),
                "inflation_vol_correlation": sc["infVolCorr"],
                "concentration_threshold": [bt["Risk_IRVol"][k] for k in ("2", "3", "4", "1")],
            },
        },
        "credit_q": {
            "tenors": d["mapLabels_1"]["Risk_CreditQ"],
            "buckets": crq_b,
            "same_issuer_correlation": sc["crqSameIntraCorr"],
            "different_issuer_correlation": sc["crqDiffIntraCorr"],
            "residual_correlation": sc["crqResidualIntraCorr"],
            "inter_bucket_buckets": non_res,
            "inter_bucket_correlation": matrix(d["interBucketCorrelation"]["Risk_CreditQ"], non_res),
            "delta": {
                "risk_weight": per_h(d, lambda m: [float(m["rwBucket"]["Risk_CreditQ"][b]) for b in crq_b]),
                "concentration_threshold": [bt["Risk_CreditQ"][b] for b in crq_b],
                "base_corr_risk_weight": per_h(d, lambda m: float(m["rwRiskType"]["Risk_BaseCorr"])),
                "base_corr_correlation": sc["basecorrCorr"],
            },
            "vega": {
                "risk_weight": per_h(d, lambda m: float(m["rwRiskType"]["Risk_CreditVol"])),
                "concentration_threshold": conc["flatThresholds"]["Risk_CreditVol"],
            },
        },
        "credit_nonq": {
            "tenors": d["mapLabels_1"]["Risk_CreditNonQ"],
            "buckets": crnq_b,
            "same_group_correlation": sc["crnqSameIntraCorr"],
            "different_group_correlation": sc["crnqDiffIntraCorr"],
            "residual_correlation": sc["crnqResidualIntraCorr"],
            "inter_bucket_buckets": [b for b in crnq_b if b != "Residual"],
            "inter_bucket_correlation": [[1.0, sc["crnqInterCorr"]], [sc["crnqInterCorr"], 1.0]],
            "delta": {
                "risk_weight": per_h(d, lambda m: [float(m["rwBucket"]["Risk_CreditNonQ"][b]) for b in crnq_b]),
                "concentration_threshold": [bt["Risk_CreditNonQ"][b] for b in crnq_b],
            },
            "vega": {
                "risk_weight": per_h(d, lambda m: float(m["rwRiskType"]["Risk_CreditVolNonQ"])),
                "concentration_threshold": conc["flatThresholds"]["Risk_CreditVolNonQ"],
            },
        },
        "equity": {
            "buckets": eq_b,
            "intra_bucket_correlation": [float(d["intraBucketCorrelation"]["Risk_Equity"].get(b, 0.0)) for b in eq_b],
            "inter_bucket_buckets": eq_nonres,
            "inter_bucket_correlation": matrix(d["interBucketCorrelation"]["Risk_Equity"], eq_nonres),
            "no_curvature_buckets": ["12"],
            "delta": {
                "risk_weight": per_h(d, lambda m: [float(m["rwBucket"]["Risk_Equity"][b]) for b in eq_b]),
                "concentration_threshold": [bt["Risk_Equity"][b] for b in eq_b],
            },
            "vega": {
                "risk_weight": per_h(d, lambda m: [float(m["rwBucket"]["Risk_EquityVol"][b]) for b in eq_b]),
                "historical_volatility_ratio": per_h(d, lambda m: float(m["historicalVolatilityRatios"]["Risk_EquityVol"])),
                "concentration_threshold": [bt["Risk_EquityVol"][b] for b in eq_b],
            },
        },
        "commodity": {
            "buckets": cm_b,
            "intra_bucket_correlation": [float(d["intraBucketCorrelation"]["Risk_Commodity"][b]) for b in cm_b],
            "inter_bucket_buckets": cm_b,
            "inter_bucket_correlation": matrix(d["interBucketCorrelation"]["Risk_Commodity"], cm_b),
            "delta": {
                "risk_weight": per_h(d, lambda m: [float(m["rwBucket"]["Risk_Commodity"][b]) for b in cm_b]),
                "concentration_threshold": [bt["Risk_Commodity"][b] for b in cm_b],
            },
            "vega": {
                "risk_weight": per_h(d, lambda m: float(m["rwRiskType"]["Risk_CommodityVol"])),
                "historical_volatility_ratio": per_h(
                    d, lambda m: float(m["historicalVolatilityRatios"]["Risk_CommodityVol"])),
                "concentration_threshold": [bt["Risk_CommodityVol"][b] for b in cm_b],
            },
        },
        "fx": {
            "high_vol_currencies": d["ccyGroups"]["1"],
            "delta": {
                "risk_weight": per_h(d, lambda m: matrix(m["rwFX"], ["0", "1"])),
                "correlation_regular_calc_ccy": matrix(d["fxRegVolCorrelation"], ["0", "1"]),
                "correlation_high_vol_calc_ccy": matrix(d["fxHighVolCorrelation"], ["0", "1"]),
                "concentration_categories": [fxc["1"], fxc["2"]],
                "concentration_threshold": [bt["Risk_FX"][k] for k in ("1", "2", "3")],
            },
            "vega": {
                "risk_weight": per_h(d, lambda m: float(m["rwRiskType"]["Risk_FXVol"])),
                "historical_volatility_ratio": per_h(d, lambda m: float(m["historicalVolatilityRatios"]["Risk_FXVol"])),
                "correlation": sc["fxCorr"],
                "concentration_threshold": [bt["Risk_FXVol"][k] for k in fx_vol_keys],
            },
        },
    }
    assert [tuple(conc["fxVolThresholdCategories"][k]) for k in fx_vol_keys] == [
        ("1", "1"), ("1", "2"), ("1", "3"), ("2", "2"), ("2", "3"), ("3", "3")]
    model["meta"]["status"] = "published"  # DOMAIN.md: ISDA-published parameters
    # SIMM margins sensitivities of any product (crypto in the Residual bucket)
    model["domain"] = {"underlyings": ["*"], "kinds": ["option", "future", "perpetual", "spot"],
                       "settlement": ["linear", "inverse"]}
    return model


def main() -> None:
    for version, stem in VERSIONS.items():
        data = json.loads((HERE / "simm_ore" / f"{stem}.json").read_text())
        model = convert(data, version)
        header = (f"# ISDA SIMM v{version} parameters, all risk classes; generated by models/tools/make_simm.py from\n"
                  f"# models/tools/simm_ore/{stem}.json (transcribed from ORE); see [meta] for the source lines.\n")
        (MODELS / f"simm-{version}.toml").write_text(header + tomli_w.dumps(model))
        print(f"wrote simm-{version}.toml")


if __name__ == "__main__":
    main()
