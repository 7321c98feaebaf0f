"""ISDA SIMM v2.5 parameters for every risk class, as plain data (used by make_simm.py).

Transcribed by hand from ORE (OpenSourceRisk/Engine), OREAnalytics/orea/simm/simmconfigurationisdav2_5.cpp
(risk weights, historical volatility ratios, correlations, risk-class correlations psi) and
simmconcentrationisdav2_5.cpp (concentration thresholds, listed there in USD mm); equity tables from
validation/cases/simm/equity_parameters_v2.5.json. Checked against the ISDA v2.5 unit-test cases in
validation/cases/simm/.
"""

MM = 1e6
TENORS = ["2w", "1m", "3m", "6m", "1y", "2y", "3y", "5y", "10y", "15y", "20y", "30y"]
CREDIT_TENORS = ["1y", "2y", "3y", "5y", "10y"]


def symmetric(upper, n):
    """Full n x n matrix (unit diagonal) from the rows of its strict upper triangle."""
    m = [[1.0] * n for _ in range(n)]
    for i, row in enumerate(upper):
        for k, v in enumerate(row):
            j = i + 1 + k
            m[i][j] = m[j][i] = float(v)
    return m


IR_TENOR_CORR = symmetric([
    [.74, .63, .55, .45, .36, .32, .28, .23, .20, .18, .16],
    [.80, .69, .52, .41, .35, .29, .24, .18, .17, .16],
    [.85, .67, .53, .45, .39, .32, .24, .22, .22],
    [.83, .71, .62, .54, .45, .36, .35, .33],
    [.94, .86, .78, .65, .58, .55, .53],
    [.95, .89, .78, .72, .68, .67],
    [.96, .87, .80, .77, .74],
    [.94, .89, .86, .84],
    [.97, .95, .94],
    [.98, .98],
    [.99],
], 12)

CRQ_INTER = symmetric([
    [.36, .38, .35, .37, .33, .36, .31, .32, .33, .32, .30],
    [.46, .44, .45, .43, .33, .36, .38, .39, .40, .36],
    [.49, .49, .47, .34, .36, .41, .42, .43, .39],
    [.48, .48, .31, .34, .38, .42, .41, .37],
    [.48, .33, .35, .39, .42, .43, .38],
    [.29, .32, .36, .39, .40, .35],
    [.28, .32, .31, .30, .28],
    [.33, .34, .33, .30],
    [.38, .36, .34],
    [.38, .36],
    [.35],
], 12)

CM_INTER = symmetric([
    [.33, .21, .27, .29, .21, .48, .16, .41, .23, .18, .02, .21, .19, .15, 0, .24],
    [.94, .94, .89, .21, .19, .13, .21, .21, .41, .27, .31, .29, .21, 0, .60],
    [.91, .85, .12, .20, .09, .19, .20, .36, .18, .22, .23, .23, 0, .54],
    [.84, .14, .24, .13, .21, .19, .39, .25, .23, .27, .18, 0, .59],
    [.15, .17, .09, .16, .21, .38, .28, .28, .27, .18, 0, .55],
    [.33, .53, .26, .09, .21, .04, .11, .10, .09, 0, .24],
    [.31, .72, .24, .14, -.12, .19, .14, .08, 0, .24],
    [.24, .04, .13, -.07, .04, .06, .01, 0, .16],
    [.21, .18, -.07, .12, .12, .10, 0, .21],
    [.14, .11, .11, .10, .07, 0, .14],
    [.28, .30, .25, .18, 0, .38],
    [.18, .18, .08, 0, .21],
    [.34, .16, 0, .34],
    [.13, 0, .26],
    [0, .21],
    [0],
], 17)

IR = {
    "tenors": TENORS,
    "buckets": ["1", "2", "3"],
    "bucket_names": {"1": "regular volatility", "2": "low volatility", "3": "high volatility"},
    "low_vol_currencies": ["JPY"],
    "regular_vol_currencies": ["USD", "EUR", "GBP", "CHF", "AUD", "NZD", "CAD", "SEK", "NOK", "DKK", "HKD", "KRW",
                               "SGD", "TWD"],
    "sub_curves": ["OIS", "Libor1m", "Libor3m", "Libor6m", "Libor12m", "Prime", "Municipal"],
    "tenor_correlation": IR_TENOR_CORR,
    "sub_curve_correlation": 0.99,
    "inflation_correlation": 0.37,
    "xccy_basis_correlation": 0.01,
    "inter_currency_correlation": 0.24,
    "concentration_categories": [["USD", "EUR", "GBP"],
                                 ["AUD", "CAD", "CHF", "DKK", "HKD", "KRW", "NOK", "NZD", "SEK", "SGD", "TWD"],
                                 ["JPY"]],
    "delta": {
        "risk_weight": {
            "10d": [[115, 112, 96, 74, 66, 61, 56, 52, 53, 57, 60, 66],
                    [15, 18, 9.0, 11, 13, 15, 18, 20, 19, 19, 20, 23],
                    [119, 93, 80, 82, 90, 92, 95, 95, 94, 108, 105, 101]],
            "1d": [[19, 16, 12, 12, 13, 16, 16, 16, 16, 17, 16, 17],
                   [1.7, 3.4, 1.8, 2.0, 3.3, 4.8, 5.8, 6.8, 6.5, 7.0, 7.5, 8.3],
                   [49, 24, 16, 20, 23, 23, 33, 31, 34, 33, 33, 27]],
        },
        "inflation_risk_weight": {"10d": 63.0, "1d": 15.0},
        "xccy_basis_risk_weight": {"10d": 21.0, "1d": 5.9},
        "concentration_threshold": [230 * MM, 44 * MM, 70 * MM, 33 * MM],
    },
    "vega": {
        "risk_weight": {"10d": 0.18, "1d": 0.047},
        "historical_volatility_ratio": {"10d": 0.44, "1d": 0.51},
        "inflation_vol_correlation": 0.37,
        "concentration_threshold": [3300 * MM, 470 * MM, 570 * MM, 120 * MM],
    },
}

CREDIT_Q = {
    "tenors": CREDIT_TENORS,
    "buckets": [str(i) for i in range(1, 13)] + ["Residual"],
    "same_issuer_correlation": 0.93,
    "different_issuer_correlation": 0.42,
    "residual_correlation": 0.5,
    "inter_bucket_buckets": [str(i) for i in range(1, 13)],
    "inter_bucket_correlation": CRQ_INTER,
    "delta": {
        "risk_weight": {"10d": [75, 91, 78, 55, 67, 47, 187, 665, 262, 251, 172, 247, 665],
                        "1d": [21, 27, 16, 12, 14, 12, 48, 144, 51, 53, 38, 57, 144]},
        "concentration_threshold": [x * MM for x in [0.91, 0.19, 0.19, 0.19, 0.19, 0.19, 0.91, 0.19, 0.19, 0.19,
                                                     0.19, 0.19, 0.19]],
        "base_corr_risk_weight": {"10d": 10.0, "1d": 2.5},
        "base_corr_correlation": 0.24,
    },
    "vega": {
        "risk_weight": {"10d": 0.74, "1d": 0.085},
        "concentration_threshold": 260 * MM,
    },
}

CREDIT_NONQ = {
    "tenors": CREDIT_TENORS,
    "buckets": ["1", "2", "Residual"],
    "same_group_correlation": 0.82,
    "different_group_correlation": 0.27,
    "residual_correlation": 0.5,
    "inter_bucket_buckets": ["1", "2"],
    "inter_bucket_correlation": [[1.0, 0.4], [0.4, 1.0]],
    "delta": {
        "risk_weight": {"10d": [280, 1300, 1300], "1d": [66, 250, 250]},
        "concentration_threshold": [9.5 * MM, 0.5 * MM, 0.5 * MM],
    },
    "vega": {
        "risk_weight": {"10d": 0.74, "1d": 0.085},
        "concentration_threshold": 145 * MM,
    },
}

COMMODITY = {
    "buckets": [str(i) for i in range(1, 18)],
    "intra_bucket_correlation": [.84, .98, .96, .97, .98, .88, .98, .49, .80, .46, .55, .46, .66, .18, .21, 0, .36],
    "inter_bucket_buckets": [str(i) for i in range(1, 18)],
    "inter_bucket_correlation": CM_INTER,
    "delta": {
        "risk_weight": {"10d": [27, 29, 33, 25, 35, 24, 40, 53, 44, 58, 20, 21, 13, 16, 13, 58, 17],
                        "1d": [9.0, 9.1, 8.1, 7.2, 10, 8.2, 9.7, 10, 10, 16, 6.2, 6.5, 4.6, 4.6, 4.0, 16, 5.1]},
        "concentration_threshold": [x * MM for x in [310, 2100, 1700, 1700, 1700, 3200, 3200, 2700, 2700, 52, 530,
                                                     1600, 100, 100, 100, 52, 4000]],
    },
    "vega": {
        "risk_weight": {"10d": 0.6, "1d": 0.16},
        "historical_volatility_ratio": {"10d": 0.69, "1d": 0.69},
        "concentration_threshold": [x * MM for x in [210, 2700, 290, 290, 290, 5000, 5000, 920, 920, 100, 350, 720,
                                                     500, 500, 500, 65, 65]],
    },
}
