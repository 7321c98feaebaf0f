"""Walk-forward backtest: no look-ahead, the three EMIR anti-procyclicality options, procyclicality figures."""

import numpy as np
import pandas as pd
import pytest

from greeksmargin.calibration.backtest import PORTFOLIOS
from greeksmargin.calibration.history import validate_history, with_vol_proxy
from greeksmargin.calibration.shocks import calibrate
from greeksmargin.calibration.walkforward import (
    APC,
    apc_adjust,
    buffered_margin,
    procyclicality,
    stressed_rows,
    walk_forward,
    weighted_tail_quantiles,
)
from greeksmargin.errors import InputError

RECIPE = {"confidence": 0.99, "mpor": 2, "method": "hs", "vol_series": "index", "vega_method": "index"}
PORTS = {k: PORTFOLIOS[k] for k in ("long_future", "short_straddle")}


def _hist(n=900, seed=1, calm_then_wild=False):
    rng = np.random.default_rng(seed)
    sig = np.full(n, 0.01)
    if calm_then_wild:
        sig[n // 2:] = 0.03
    r = rng.standard_normal(n) * sig
    price = 100 * np.exp(np.cumsum(r))
    vol = 0.2 * np.exp(np.cumsum(rng.standard_normal(n) * 0.03))
    t = pd.DataFrame({"date": pd.bdate_range("2010-01-04", periods=n), "price": price, "vol": vol})
    return with_vol_proxy(validate_history(t, name="test", periods_per_year=252))


def test_walk_forward_never_reads_rows_after_the_refit_date():
    h = _hist()
    kw = dict(oos_start="2011-06-01", refit="quarterly", portfolios=PORTS, in_sample=False)
    base = walk_forward(h, "greeks-default", RECIPE, **kw)
    refits = base.summary["refits"]
    cut = pd.Timestamp(refits[1]["refit"])
    poisoned = h.copy()
    later = poisoned["date"] >= cut
    poisoned.loc[later, "price"] *= np.linspace(1, 5, int(later.sum())) ** 3  # wild moves after the cut
    poisoned.loc[later, "vol"] = 3.0
    poisoned.attrs = dict(h.attrs)
    got = walk_forward(poisoned, "greeks-default", RECIPE, **kw)
    # the calibrations at and before the cut are unchanged, the later ones are not
    for a, b in zip(base.summary["refits"][:2], got.summary["refits"][:2]):
        assert a == b
    assert got.summary["refits"][2]["price_shock_up"] != base.summary["refits"][2]["price_shock_up"]
    # the margins of the first period (its test days end before the cut) are identical
    first = base.daily["refit"] == refits[0]["refit"]
    np.testing.assert_array_equal(base.daily.loc[first, "im"].to_numpy(), got.daily.loc[first, "im"].to_numpy())


def test_buffer_is_25pct_in_calm_and_released_when_margin_rises():
    calm = np.full(30, 10.0)
    assert np.allclose(buffered_margin(calm, 0.25), 12.5)
    spike = np.r_[np.full(30, 10.0), 11.0, 14.0, 20.0, 20.0]
    im = buffered_margin(spike, 0.25, window=20)
    assert im[30] == pytest.approx(12.5)  # a 10% rise is absorbed by the buffer: IM does not move
    assert im[31] == pytest.approx(14.0)  # beyond the buffer IM is the calculated margin itself
    assert im[32] == pytest.approx(20.0) and np.all(im >= spike)
    assert np.diff(im[29:33]).max() < np.diff(spike[29:33]).max() + 1e-12  # smaller jumps than unbuffered
    np.testing.assert_array_equal(buffered_margin(spike, 0.0), spike)


def test_stressed_weight_raises_the_shocks_to_at_least_25pct_stressed():
    h = _hist(n=1500, calm_then_wild=True)
    window = h.iloc[:900].reset_index(drop=True)
    window.attrs = dict(h.attrs)
    i, j = stressed_rows(window["price"].to_numpy(), 252)
    assert i >= 750 - 252  # the wild part
    base = calibrate(window, 0.99, 2, "hs")
    adj = apc_adjust(window, APC(stressed_weight=0.25), 0.99, 2)(base)
    assert adj.price_shock_down > base.price_shock_down and adj.price_shock_up > base.price_shock_up
    # the weighted quantile: stressed observations carry exactly 25% of the weight
    r = np.r_[np.zeros(900), np.ones(100)]
    s = np.r_[np.zeros(900, bool), np.ones(100, bool)]
    lo, hi = weighted_tail_quantiles(r, s, 0.25, 0.99)
    assert hi == 1.0 and weighted_tail_quantiles(r, s, 0.0, 0.8)[1] == 0.0
    assert weighted_tail_quantiles(r, s, 0.25, 0.8)[1] == 1.0  # 25% mass above the 80% quantile


def test_ten_year_lookback_floor_binds_on_a_short_calm_window():
    h = _hist(n=2600, calm_then_wild=False)
    # a calm recent window after a wild past: the floor over the longer past raises the shocks
    p = h["price"].to_numpy().copy()
    r = np.diff(np.log(p))
    r[:1300] *= 3.0
    h["price"] = 100 * np.exp(np.r_[0.0, np.cumsum(r)])
    short = h.iloc[-300:].reset_index(drop=True)
    short.attrs = dict(h.attrs)
    base = calibrate(short, 0.99, 2, "hs")
    floor = apc_adjust(h, APC(lookback_floor_years=10), 0.99, 2)(base)
    assert floor.price_shock_down > 1.5 * base.price_shock_down
    assert apc_adjust(h, APC(), 0.99, 2)(base).price_shock_down == base.price_shock_down


def test_walk_forward_apc_buffer_changes_im_and_summary_shape():
    h = _hist()
    kw = dict(oos_start="2012-01-02", refit="yearly", portfolios=PORTS)
    plain = walk_forward(h, "greeks-default", RECIPE, **kw)
    buf = walk_forward(h, "greeks-default", RECIPE, apc=APC(buffer=0.25), **kw)
    ratio = buf.daily["im"] / plain.daily["im"]
    assert ratio.max() == pytest.approx(1.25) and ratio.min() >= 1.0 - 1e-12
    s = buf.summary
    assert {p["portfolio"] for p in s["portfolios"]} == set(PORTS)
    for key in ("days", "breaches", "expected", "kupiec_p", "christoffersen_p", "worst_excess", "in_sample"):
        assert key in s["portfolios"][0]
    assert s["pooled"]["days"] == len(buf.daily) and s["refits"][0]["refit"] == "2012-01-02"
    with pytest.raises(InputError):
        walk_forward(h, "greeks-default", RECIPE, oos_start="2030-01-01")


def test_procyclicality_figures():
    d = pd.bdate_range("2020-01-01", periods=40).to_numpy()
    im = np.r_[np.full(20, 10.0), np.full(20, 15.0)]
    p = procyclicality(im, d)
    assert p["peak_to_trough"] == pytest.approx(1.5)
    assert p["max_increase_5d"] == pytest.approx(0.5) and p["max_increase_30d"] == pytest.approx(0.5)


def test_window_without_vol_index_takes_policy_vol_not_the_template():
    h = _hist()
    h["vol_source"] = "proxy"  # no vol-index day anywhere
    kw = dict(oos_start="2012-01-02", refit="yearly", portfolios=PORTS, in_sample=False)
    rec = dict(RECIPE, policy_vol=(0.5, 0.35))
    got = walk_forward(h, "greeks-default", rec, **kw)
    r0 = got.summary["refits"][0]
    assert r0["vol_shocks_from"].startswith("policy") and r0["vol_shock_up"] == 0.5 and r0["vol_shock_down"] == 0.35
    proxy = walk_forward(h, "greeks-default", RECIPE, **kw).summary["refits"][0]
    assert proxy["vol_shocks_from"].startswith("proxy") and proxy["vol_shock_down"] != 0.35


def test_cli_walk_forward_json(tmp_path, capsys):
    import json

    from greeksmargin.cli import main

    h = _hist()
    f = tmp_path / "h.csv"
    h[["date", "price", "vol"]].assign(date=h["date"].dt.strftime("%Y-%m-%d")).to_csv(f, index=False)
    out = tmp_path / "wf.json"
    rc = main(["backtest", str(f), "--walk-forward", "--oos-start", "2012-01-02", "--portfolios",
               "long_future,short_straddle", "--json", str(out)])
    assert rc == 0
    s = json.loads(out.read_text())
    assert [p["portfolio"] for p in s["portfolios"]] == ["long_future", "short_straddle"]
    assert s["pooled"]["days"] == sum(p["days"] for p in s["portfolios"]) and s["refits"]
    # the recipe is the model's recorded calibrate command (10-year lookback, index vega shocks)
    assert s["settings"]["recipe"]["vega_method"] == "index" and s["settings"]["lookback_years"] == 10.0
    assert "pooled" in capsys.readouterr().out
    assert main(["backtest", str(f), "--walk-forward"]) == 2  # no --oos-start
    assert main(["backtest", str(f), "--json", str(out)]) == 2  # --json without --walk-forward
