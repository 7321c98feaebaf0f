"""Vega-charge shocks from the reference straddles (greeksmargin.calibration.reference)."""

import numpy as np
import pytest

from greeksmargin.calibration.backtest import run_backtest
from greeksmargin.calibration.history import load_history, select_dates
from greeksmargin.calibration.model_file import apply_calibration, build_model
from greeksmargin.calibration.reference import REFERENCE_PORTFOLIOS, ReferenceVega, reference_vega_shocks
from greeksmargin.calibration.shocks import calibrate
from greeksmargin.calibration.sweep import calibrated_model, margin_function, sweep_point
from greeksmargin.engine.models import load_model
from greeksmargin.errors import InputError, ModelError

KW = dict(confidence=0.99, mpor=2, method="hs", vol_series="index", joint_vol=True)


@pytest.fixture(scope="module")
def vix_years():
    """S&P 500 with the VIX on every row (2014-01-03..2016-12-30: 755 rows)."""
    h = select_dates(load_history("sp500-arch"), "2014-01-03", "2016-12-31")
    assert (h["vol_source"] == "index").all()
    return h


def _breaches_of_reference(hist, raw):
    res = run_backtest(hist, margin_function(build_model(raw), hist, "engine"), confidence=0.99, mpor=2,
                       portfolios=REFERENCE_PORTFOLIOS)
    return res.summary.set_index("portfolio")


@pytest.mark.parametrize("method,kind", [("revaluation", "relative"), ("taylor", "relative"),
                                         ("revaluation", "absolute")])
def test_engine_covers_the_reference_straddles_as_calibrated(vix_years, method, kind):
    """The engine's own backtest of the two straddles breaches on exactly the days the solver left uncovered."""
    template = load_model("greeks-default")
    raw_t = dict(template.raw)
    raw_t["components"] = {k: dict(v) for k, v in template.raw["components"].items()}
    raw_t["components"]["vega"].update(method=method, kind=kind)
    raw, cal = calibrated_model(vix_years, template=build_model(raw_t, "t"), vega_method="reference", vega_floor=0.0,
                                **KW)
    ref = cal.extra["vega_reference"]
    n = len(vix_years) - 2
    assert ref.n_days == n and ref.kind == kind and ref.tenor_days == 30.0
    assert 0 < ref.down < (1 if kind == "relative" else 0.2) and 0 < ref.up < 20
    rec = raw["meta"]["calibration"]["SPX"]
    assert rec["vega_shock_method"] == "reference" and rec["vega_shock_down"] == ref.down
    assert raw["components"]["vega"]["shock_down_by_underlying"]["SPX"] == pytest.approx(ref.down, abs=1e-6)
    assert raw["components"]["vega"]["shock_by_underlying"]["SPX"] == pytest.approx(ref.up, abs=1e-6)
    s = _breaches_of_reference(vix_years, raw)
    # the written shocks are rounded to 1e-6: a day within that of its implied shock may flip
    assert abs(s.at["long_straddle", "breaches"] - round((1 - ref.covered_down) * n)) <= 1
    assert abs(s.at["short_straddle", "breaches"] - round((1 - ref.covered_up) * n)) <= 1
    assert s.at["long_straddle", "breaches"] <= np.ceil(0.01 * n) + 1
    # the long straddle is never covered by the scan / gamma alone on every day (it only gains on price moves)
    assert ref.zero_down < 0.9


def test_higher_confidence_larger_shocks_and_index_marginals_differ(vix_years):
    raw = calibrated_model(vix_years, **KW)[0]  # index-marginal vega shocks
    r99 = reference_vega_shocks(raw, vix_years, 0.99, 2, target="SPX", underlying="SPX")
    r95 = reference_vega_shocks(raw, vix_years, 0.95, 2, target="SPX", underlying="SPX")
    assert r95.down < r99.down and r95.up <= r99.up
    assert r95.covered_down == pytest.approx(0.95, abs=2 / r95.n_days)
    # the shocks do not depend on the vega shocks of the model they start from (switched off first)
    raw2 = {**raw, "components": {**raw["components"], "vega": {**raw["components"]["vega"],
                                                                 "shock_by_underlying": {"SPX": 3.0}}}}
    assert reference_vega_shocks(raw2, vix_years, 0.99, 2, target="SPX", underlying="SPX").down == r99.down
    # a sweep cell with the shipped model's vol settings calibrates the same vega shocks
    row = sweep_point(0.99, 2, 0.94, "greeks-default", history=vix_years, method="hs", step=5, margin="stress-grid",
                      vol_series="index", joint_vol=True, vega_method="reference")
    assert row["vega_shock_down"] == r99.down and row["vega_shock_up"] == r99.up
    assert row["vol_shock_down"] != r99.down


def test_reference_needs_a_vol_series(vix_years):
    btc = load_history("btc-yahoo")
    with pytest.raises(ModelError, match="reference vega shocks need calibrated vol shocks"):
        calibrated_model(btc, confidence=0.99, mpor=2, vega_method="reference")
    with pytest.raises(InputError, match="unknown vega method"):
        calibrated_model(vix_years, confidence=0.99, mpor=2, vega_method="smile")
    raw = calibrated_model(vix_years, **KW)[0]
    no_vol = vix_years.assign(vol=np.nan)
    with pytest.raises(InputError, match="too few for reference calibration"):
        reference_vega_shocks(raw, no_vol, 0.99, 2, target="SPX", underlying="SPX")


def test_reference_shocks_floored_at_a_fraction_of_the_marginal_quantiles(vix_years):
    """A straddle the scan always covers leaves the vol-rise shock at 0: the policy floor keeps a vega charge."""
    cal = calibrate(vix_years, 0.99, 2, vol_series="index")
    ref = ReferenceVega(up=0.0, down=0.9 * cal.vol.down, kind="relative", tenor_days=30.0, n_days=700,
                        covered_up=0.995, covered_down=0.99, zero_up=0.995, zero_down=0.3, start="a", end="b")
    template = load_model("greeks-default").raw
    for floor, want_up, want_down in ((0.5, 0.5 * cal.vol.up, 0.9 * cal.vol.down),
                                      (0.95, 0.95 * cal.vol.up, 0.95 * cal.vol.down), (0.0, 0.0, 0.9 * cal.vol.down)):
        raw = apply_calibration(template, cal, target="SPX", vega_reference=ref, vega_floor=floor)
        v = raw["components"]["vega"]
        assert v["shock_by_underlying"]["SPX"] == pytest.approx(want_up, abs=1e-6)
        assert v["shock_down_by_underlying"]["SPX"] == pytest.approx(want_down, abs=1e-6)
        rec = raw["meta"]["calibration"]["SPX"]
        assert rec["vega_shock_up"] == pytest.approx(want_up) and rec["vega_reference_up"] == 0.0
        assert rec["vega_floor_binding_up"] == (floor > 0) and rec["vega_floor_binding_down"] == (floor > 0.9)
    half = apply_calibration(template, cal, target="SPX", vega_reference=ref, vega_floor=0.5, scale=0.5)
    assert half["components"]["vega"]["shock_by_underlying"]["SPX"] == pytest.approx(0.25 * cal.vol.up, abs=1e-6)
