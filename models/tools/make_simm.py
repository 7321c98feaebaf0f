"""Generate models/simm-2.5.toml and models/simm-2.6.toml (run from anywhere: python models/tools/make_simm.py).

v2.5 equity numbers come from validation/cases/simm/equity_parameters_v2.5.json; the rest (v2.6, FX, psi) were
transcribed from ORE (OpenSourceRisk/Engine, OREAnalytics/orea/simm/simmconfigurationisdav2_{5,6}.cpp).
"""

import json
from pathlib import Path

import sys

import tomli_w

sys.path.insert(0, str(Path(__file__).resolve().parent))
import simm_v25  # noqa: E402

e = json.load(open(Path(__file__).resolve().parents[2] / "validation/cases/simm/equity_parameters_v2.5.json"))
B = e["buckets"]


def common(version, effective_date, source, notes):
    return {
        "meta": {
            "name": f"simm-{version}",
            "methodology": "simm",
            "version": version,
            "description": f"ISDA SIMM v{version}: equity and FX delta, vega, curvature; 10-day and 1-day",
            "source": source,
            "effective_date": effective_date,
            "notes": notes,
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
    }


# ---- v2.5
p = common(
    "2.5",
    "2022-12-03",
    "ISDA SIMM v2.5 equity calibration: validation/cases/simm/equity_parameters_v2.5.json "
    "(as published in open-source SIMM implementations); risk-class correlations psi and FX tables from ISDA SIMM v2.5 "
    "as encoded in ORE (OpenSourceRisk/Engine OREAnalytics/orea/simm/simmconfigurationisdav2_5.cpp)",
    [
        "Concentration thresholds in USD (delta per 1% move; vega risk sigma*HVR*vega); 10-day only.",
        "Equity bucket 12 (volatility indices) has no curvature (CVR = 0), as in SIMM >= 2.2.",
        "Curvature SF(t) = curvature_factor * min(1, curvature_scale_days / t_days); t: w=7, m=365/12, y=365 days.",
        "sigma = RW * sqrt(365 / vega_sigma_days) / Phi^-1(delta_confidence) (10d: 14 days; 1d: 1.4 days).",
    ],
)
p["risk_class_correlation"] = {
    "classes": ["InterestRate", "CreditQualifying", "CreditNonQualifying", "Equity", "Commodity", "FX"],
    "matrix": [
        [1.0, 0.29, 0.13, 0.28, 0.46, 0.32],
        [0.29, 1.0, 0.54, 0.71, 0.52, 0.38],
        [0.13, 0.54, 1.0, 0.46, 0.41, 0.12],
        [0.28, 0.71, 0.46, 1.0, 0.49, 0.35],
        [0.46, 0.52, 0.41, 0.49, 1.0, 0.41],
        [0.32, 0.38, 0.12, 0.35, 0.41, 1.0],
    ],
}
p["equity"] = {
    "buckets": B,
    "intra_bucket_correlation": e["intra_bucket_correlation"],
    "inter_bucket_buckets": B[:12],
    "inter_bucket_correlation": e["inter_bucket_correlation_buckets_1_to_12"],
    "no_curvature_buckets": ["12"],
    "delta": {
        "risk_weight": e["delta_risk_weight"],
        "concentration_threshold": e["delta_concentration_threshold_usd_per_pct"],
    },
    "vega": {
        "risk_weight": e["vega_risk_weight"],
        "historical_volatility_ratio": e["historical_volatility_ratio"],
        "concentration_threshold": e["vega_concentration_threshold_usd"],
    },
}
p["meta"]["description"] = "ISDA SIMM v2.5: all risk classes (IR, CreditQ, CreditNonQ, Equity, Commodity, FX); 10-day and 1-day"
p["meta"]["source"] += (
    "; IR, CreditQ, CreditNonQ and Commodity tables from ORE simmconfigurationisdav2_5.cpp and "
    "simmconcentrationisdav2_5.cpp (models/tools/simm_v25.py)"
)
p["interest_rate"] = simm_v25.IR
p["credit_q"] = simm_v25.CREDIT_Q
p["credit_nonq"] = simm_v25.CREDIT_NONQ
p["commodity"] = simm_v25.COMMODITY
(Path(__file__).resolve().parents[1] / "simm-2.5.toml").write_text(
    "# ISDA SIMM v2.5 parameters (all risk classes; product-class aggregation). Equity tables from the\n"
    "# published calibration in validation/cases/simm/equity_parameters_v2.5.json; the rest from ORE; see [meta].\n"
    + tomli_w.dumps(p)
)
# ---- v2.6 from ORE simmconfigurationisdav2_6.cpp / simmconcentrationisdav2_6.cpp
ore_inter = {
    (1, 2): 0.18,
    (1, 3): 0.19,
    (1, 4): 0.19,
    (1, 5): 0.14,
    (1, 6): 0.16,
    (1, 7): 0.15,
    (1, 8): 0.16,
    (1, 9): 0.18,
    (1, 10): 0.12,
    (1, 11): 0.19,
    (1, 12): 0.19,
    (2, 3): 0.22,
    (2, 4): 0.21,
    (2, 5): 0.15,
    (2, 6): 0.18,
    (2, 7): 0.17,
    (2, 8): 0.19,
    (2, 9): 0.2,
    (2, 10): 0.14,
    (2, 11): 0.21,
    (2, 12): 0.21,
    (3, 4): 0.22,
    (3, 5): 0.13,
    (3, 6): 0.16,
    (3, 7): 0.18,
    (3, 8): 0.17,
    (3, 9): 0.22,
    (3, 10): 0.13,
    (3, 11): 0.2,
    (3, 12): 0.2,
    (4, 5): 0.17,
    (4, 6): 0.22,
    (4, 7): 0.22,
    (4, 8): 0.23,
    (4, 9): 0.22,
    (4, 10): 0.17,
    (4, 11): 0.26,
    (4, 12): 0.26,
    (5, 6): 0.29,
    (5, 7): 0.26,
    (5, 8): 0.29,
    (5, 9): 0.14,
    (5, 10): 0.24,
    (5, 11): 0.32,
    (5, 12): 0.32,
    (6, 7): 0.34,
    (6, 8): 0.36,
    (6, 9): 0.17,
    (6, 10): 0.3,
    (6, 11): 0.39,
    (6, 12): 0.39,
    (7, 8): 0.33,
    (7, 9): 0.16,
    (7, 10): 0.28,
    (7, 11): 0.36,
    (7, 12): 0.36,
    (8, 9): 0.17,
    (8, 10): 0.29,
    (8, 11): 0.4,
    (8, 12): 0.4,
    (9, 10): 0.13,
    (9, 11): 0.21,
    (9, 12): 0.21,
    (10, 11): 0.3,
    (10, 12): 0.3,
    (11, 12): 0.45,
}
M = [[1.0 if i == j else ore_inter[(min(i, j), max(i, j))] for j in range(1, 13)] for i in range(1, 13)]
q = common(
    "2.6",
    "2023-12-02",
    "ISDA SIMM v2.6 as encoded in ORE (OpenSourceRisk/Engine): OREAnalytics/orea/simm/"
    "simmconfigurationisdav2_6.cpp (risk weights, HVR, correlations, psi) and simmconcentrationisdav2_6.cpp "
    "(concentration thresholds, USD mm). Transcribed by hand; not checked against the ISDA PDF.",
    [
        "Concentration thresholds in USD (ORE lists USD mm); 10-day only.",
        "Equity bucket 12 has no curvature (CVR = 0), as in SIMM >= 2.2.",
        "No published unit-test figures for v2.6 in this repository: the file is checked only for shape.",
    ],
)
q["risk_class_correlation"] = {
    "classes": ["InterestRate", "CreditQualifying", "CreditNonQualifying", "Equity", "Commodity", "FX"],
    "matrix": [
        [1.0, 0.04, 0.04, 0.07, 0.37, 0.14],
        [0.04, 1.0, 0.54, 0.7, 0.27, 0.37],
        [0.04, 0.54, 1.0, 0.46, 0.24, 0.15],
        [0.07, 0.7, 0.46, 1.0, 0.35, 0.39],
        [0.37, 0.27, 0.24, 0.35, 1.0, 0.35],
        [0.14, 0.37, 0.15, 0.39, 0.35, 1.0],
    ],
}
mm = 1e6
q["equity"] = {
    "buckets": B,
    "intra_bucket_correlation": [0.18, 0.2, 0.28, 0.24, 0.25, 0.36, 0.35, 0.37, 0.23, 0.27, 0.45, 0.45, 0.0],
    "inter_bucket_buckets": B[:12],
    "inter_bucket_correlation": M,
    "no_curvature_buckets": ["12"],
    "delta": {
        "risk_weight": {
            "10d": [30, 33, 36, 29, 26, 25, 34, 28, 36, 50, 19, 19, 50],
            "1d": [8.8, 9.6, 10, 9.0, 8.6, 8.6, 11, 10, 9.8, 14, 6.1, 6.1, 14],
        },
        "concentration_threshold": [x * mm for x in [3, 3, 3, 3, 12, 12, 12, 12, 0.64, 0.37, 810, 810, 0.37]],
    },
    "vega": {
        "risk_weight": {"10d": [0.45] * 11 + [0.96, 0.45], "1d": [0.093] * 11 + [0.23, 0.093]},
        "historical_volatility_ratio": {"10d": 0.6, "1d": 0.55},
        "concentration_threshold": [
            x * mm for x in [210, 210, 210, 210, 1300, 1300, 1300, 1300, 39, 190, 6400, 6400, 39]
        ],
    },
}
(Path(__file__).resolve().parents[1] / "simm-2.6.toml").write_text(
    "# ISDA SIMM v2.6 parameters (equity and FX risk classes; product-class aggregation); see [meta] for the source.\n"
    + tomli_w.dumps(q)
)

# ---- FX tables (appended to both files)
import tomllib

fx25 = {
    "high_vol_currencies": ["BRL", "RUB", "TRY", "ZAR"],
    "delta": {
        "risk_weight": {"10d": [[7.4, 13.6], [13.6, 14.6]], "1d": [[1.8, 3.2], [3.2, 3.4]]},
        "correlation_regular_calc_ccy": [[0.5, 0.27], [0.27, 0.42]],
        "correlation_high_vol_calc_ccy": [[0.85, 0.54], [0.54, 0.5]],
        "concentration_categories": [
            ["USD", "EUR", "JPY", "GBP", "AUD", "CHF", "CAD"],
            ["BRL", "CNY", "HKD", "INR", "KRW", "MXN", "NOK", "NZD", "RUB", "SEK", "SGD", "TRY", "ZAR"],
        ],
        "concentration_threshold": [5100e6, 1200e6, 190e6],
    },
    "vega": {
        "risk_weight": {"10d": 0.47, "1d": 0.096},
        "historical_volatility_ratio": {"10d": 0.52, "1d": 0.7},
        "correlation": 0.5,
        "concentration_threshold": [2800e6, 1300e6, 550e6, 490e6, 310e6, 200e6],
    },
}
fx26 = {
    "high_vol_currencies": ["BRL", "RUB", "TRY"],
    "delta": {
        "risk_weight": {"10d": [[7.4, 14.7], [14.7, 21.4]], "1d": [[1.8, 3.5], [3.5, 4.5]]},
        "correlation_regular_calc_ccy": [[0.5, 0.25], [0.25, -0.05]],
        "correlation_high_vol_calc_ccy": [[0.88, 0.72], [0.72, 0.5]],
        "concentration_categories": fx25["delta"]["concentration_categories"],
        "concentration_threshold": [3300e6, 880e6, 170e6],
    },
    "vega": {
        "risk_weight": {"10d": 0.48, "1d": 0.1},
        "historical_volatility_ratio": {"10d": 0.57, "1d": 0.74},
        "correlation": 0.5,
        "concentration_threshold": [2800e6, 1400e6, 590e6, 520e6, 340e6, 210e6],
    },
}
for fname, fx, ver in (("simm-2.5.toml", fx25, "2_5"), ("simm-2.6.toml", fx26, "2_6")):
    path = Path(__file__).resolve().parents[1] / fname
    text = path.read_text()
    head = "".join(l + "\n" for l in text.splitlines() if l.startswith("#"))
    doc = tomllib.loads(text)
    doc["fx"] = fx
    doc["meta"]["notes"] = doc["meta"]["notes"] + [
        f"FX tables from ORE simmconfigurationisdav{ver}.cpp and simmconcentrationisdav{ver}.cpp: delta risk weight "
        "by volatility group [group of calculation currency][group of qualifier] (0 regular, 1 high_vol_currencies); "
        "delta correlation by groups, matrix chosen by the calculation currency's group; concentration thresholds "
        "by currency category 1, 2, 3 (others); vega thresholds by pair category (1-1, 1-2, 1-3, 2-2, 2-3, 3-3); "
        "FX vega sigma uses the delta risk weight of the pair's two currency groups."
    ]
    path.write_text(head + tomli_w.dumps(doc))
