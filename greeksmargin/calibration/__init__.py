"""Calibration of margin-model shocks on market history and coverage backtests.

* :mod:`.history`: load and validate daily history (bundled ``sp500``, ``btc``, ``eth``, or a file).
* :mod:`.shocks`: price shocks (plain and EWMA-filtered historical simulation, stressed floor) and vol
  shocks at confidence c over an MPOR of h days: :func:`calibrate`.
* :mod:`.backtest`: representative (or your own) portfolios margined day by day against realised MPOR
  losses.
* :mod:`.reference`: vega-charge shocks calibrated on the reference ATM straddles.
* :mod:`.stats`: Kupiec, Christoffersen, procyclicality, efficiency.
* :mod:`.model_file`: calibrated model files with provenance.
* :mod:`.walkforward`: out-of-sample walk-forward backtests (refit the recipe on the past only), the EMIR
  anti-procyclicality options, procyclicality figures.
* :mod:`.sweep`: calibrate + backtest pipeline and the sweep cell for :func:`greeksmargin.engine.distributed.run_sweep`.
"""

from __future__ import annotations

from greeksmargin.calibration.backtest import (
    PORTFOLIOS,
    BacktestResult,
    Leg,
    engine_figures,
    engine_margin,
    load_portfolios,
    run_backtest,
    stress_grid_margin,
)
from greeksmargin.calibration.history import ewma_sigma, load_history, validate_history, with_vol_proxy
from greeksmargin.calibration.model_file import apply_calibration, build_model, write_model_file
from greeksmargin.calibration.reference import REFERENCE_PORTFOLIOS, ReferenceVega, reference_vega_shocks
from greeksmargin.calibration.shocks import (
    Calibration,
    VolShock,
    calibrate,
    filtered_h_day_returns,
    h_day_returns,
    hs_quantiles,
    return_correlation,
    vol_shocks,
)
from greeksmargin.calibration.stats import (
    christoffersen_independence,
    conditional_coverage,
    excess_breaches_p,
    kupiec_pof,
    margin_efficiency,
    peak_to_trough,
)
from greeksmargin.calibration.sweep import calibrated_model, fhs_rescaled_margin, margin_function, sweep_point

__all__ = [
    "PORTFOLIOS",
    "REFERENCE_PORTFOLIOS",
    "BacktestResult",
    "Calibration",
    "Leg",
    "ReferenceVega",
    "VolShock",
    "apply_calibration",
    "build_model",
    "calibrate",
    "calibrated_model",
    "christoffersen_independence",
    "conditional_coverage",
    "engine_figures",
    "engine_margin",
    "ewma_sigma",
    "excess_breaches_p",
    "fhs_rescaled_margin",
    "filtered_h_day_returns",
    "h_day_returns",
    "hs_quantiles",
    "kupiec_pof",
    "load_history",
    "load_portfolios",
    "margin_efficiency",
    "margin_function",
    "peak_to_trough",
    "reference_vega_shocks",
    "return_correlation",
    "run_backtest",
    "stress_grid_margin",
    "sweep_point",
    "validate_history",
    "vol_shocks",
    "with_vol_proxy",
    "write_model_file",
]
