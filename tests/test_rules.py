import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from greeksmargin.methodologies.house.combine import (
    aggregate_correlation,
    correlation_matrix,
    evaluate,
    parse_expression,
)
from greeksmargin.methodologies.house.contingency import option_standard_margin
from greeksmargin.methodologies.house.scan import group_sum, offset_scan, scan_loss
from greeksmargin.methodologies.house.sensitivity import (
    delta_charge,
    delta_charge_revaluation,
    expiry_bucket,
    gamma_charge,
    gamma_charge_revaluation,
    vega_charge,
    vega_charge_revaluation,
    vega_loss,
)

finite = st.floats(-1e6, 1e6, allow_nan=False)


def test_scan_loss_weights_and_gain_offset():
    pnl = np.array([[-10.0, 5.0], [-30.0, 8.0], [20.0, -1.0]])
    w = np.array([1.0, 0.5, 1.0])
    loss, worst = scan_loss(pnl, w, gain_offset=0.0)
    assert np.allclose(loss, [15.0, 1.0])
    assert list(worst) == [1, 2]
    loss1, _ = scan_loss(np.array([[5.0], [2.0]]), np.ones(2), 1.0)
    assert loss1[0] == 0.0  # gains only: no requirement


def test_group_sum_equals_a_loop():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(4, 10))
    starts = np.array([0, 3, 4, 9])
    ref = np.stack([v[:, a:b].sum(axis=1) for a, b in zip(starts, [3, 4, 9, 10])], axis=1)
    assert np.allclose(group_sum(v, starts), ref)


@settings(max_examples=60, deadline=None)
@given(arrays(float, (6, 5), elements=finite), st.floats(0.0, 1.0))
def test_scan_is_subadditive_and_homogeneous(p, gain):
    w = np.linspace(0.3, 1.0, 6)
    cross, _ = scan_loss(p.sum(axis=1, keepdims=True), w, gain)
    alone, _ = scan_loss(p, w, gain)
    assert cross[0] <= alone.sum() * (1 + 1e-12) + 1e-6
    scaled, _ = scan_loss(p * 3.0, w, gain)
    assert np.allclose(scaled, 3.0 * alone, rtol=1e-12, atol=1e-9)
    assert np.all(alone >= 0)


def test_offset_scan_against_a_loop():
    rng = np.random.default_rng(1)
    p = rng.normal(size=(10, 4)) * 100
    grp = np.array([0, 0, 1, 1])
    pct = np.array([0.9, 0.9, 0.5, 0.5])
    loss, _ = offset_scan(p, np.ones(10), grp, pct, 2)
    for g in (0, 1):
        c = p[:, grp == g]
        L = np.minimum(c, 0).sum(axis=1) + pct[grp == g][0] * np.maximum(c, 0).sum(axis=1)
        assert loss[g] == pytest.approx(max(0.0, -L.min()))


def test_sensitivity_charges():
    assert np.allclose(delta_charge([-100.0, 50.0], 0.1), [10.0, 5.0])
    assert np.allclose(gamma_charge([-200.0, 300.0], 0.1), [1.0, 0.0])
    b = expiry_bucket(np.array([3, 10, 40, 400, np.nan]) / 365, [7, 30, 90])
    assert list(b) == [0, 1, 2, 3, 0]
    e = np.array([10.0, -4.0, -8.0])
    unit = np.array([0, 0, 0])
    bucket = np.array([0, 0, 1])
    assert vega_charge(e, unit, bucket, 1, 2, 0.0)[0] == pytest.approx(6.0 + 8.0)
    assert vega_charge(e, unit, bucket, 1, 2, 1.0)[0] == pytest.approx(2.0)
    assert vega_charge(e, unit, bucket, 1, 2, 0.5)[0] == pytest.approx(8.0)


@given(st.floats(-1e4, 1e4), st.floats(-1e4, 1e4), st.floats(0.001, 0.5), st.floats(0.001, 0.5))
def test_gamma_revaluation_is_half_gamma_up_down_on_a_quadratic(d, g, u, m):
    """P&L D x + 0.5 G x^2: the revalued short-convexity loss is 0.5 max(-G, 0) m_up m_down (the delta drops)."""
    pu, pdn = d * u + 0.5 * g * u * u, -d * m + 0.5 * g * m * m
    got = gamma_charge_revaluation(pu, pdn, u, m)
    assert got == pytest.approx(0.5 * max(-g, 0.0) * u * m, rel=1e-9, abs=1e-9 * (abs(d) + abs(g)))
    if u == m:  # symmetric shock: the Taylor charge
        assert got == pytest.approx(float(gamma_charge(g, u)), rel=1e-9, abs=1e-9 * (abs(d) + abs(g)))


@given(st.floats(-1e6, 1e6), st.floats(0.001, 0.5), st.floats(0.001, 0.5))
def test_delta_revaluation_is_the_directional_taylor_charge_for_linear_pnl(d, up, down):
    """P&L D x: the revalued loss of the losing direction = max(D, 0) h_down + max(-D, 0) h_up."""
    got = delta_charge_revaluation(d * up, -d * down)
    assert got == pytest.approx(float(delta_charge(d, down, up)), rel=1e-12, abs=1e-12)


@given(st.floats(-1e4, 1e4), st.floats(-1e4, 1e4), st.floats(0.001, 0.5))
def test_delta_revaluation_includes_the_convexity(d, g, h):
    """P&L D x + 0.5 G x^2: the charge is max(0, -(D h + 0.5 G h^2), D h - 0.5 G h^2)."""
    pu, pdn = d * h + 0.5 * g * h * h, -d * h + 0.5 * g * h * h
    want = max(0.0, -pu, -pdn)
    assert float(delta_charge_revaluation(pu, pdn)) == pytest.approx(want, rel=1e-12, abs=1e-12)
    if g > 0:  # long gamma: less than the linear charge of the same delta
        assert float(delta_charge_revaluation(pu, pdn)) <= abs(d) * h + 1e-9


@given(arrays(float, (2, 2), elements=finite))
def test_delta_revaluation_is_subadditive(p):
    """Two books A, B with P&L (P_+, P_-) each: charge(A + B) <= charge(A) + charge(B)."""
    both = float(delta_charge_revaluation(p[0, 0] + p[1, 0], p[0, 1] + p[1, 1]))
    alone = delta_charge_revaluation(p[:, 0], p[:, 1])
    assert both <= alone.sum() * (1 + 1e-12) + 1e-6


@settings(max_examples=50)
@given(arrays(float, 6, elements=st.floats(-1e3, 1e3)), st.floats(0.01, 1.0), st.floats(0.01, 1.0),
       st.floats(0.0, 1.0))
def test_vega_revaluation_is_the_directional_taylor_charge_for_linear_pnl(e, up, down, lam):
    """P&L linear in the vol (e x shock): bucket-netted revaluation = direction-aware Taylor vega charge."""
    unit = np.array([0, 0, 0, 1, 1, 1])
    bucket = np.array([0, 0, 1, 0, 2, 2])
    taylor = vega_charge(e, unit, bucket, 2, 3, lam, shock_up=np.array([up, up]), shock_down=np.array([down, down]))
    reval = vega_charge_revaluation(e * up, -e * down, unit, bucket, 2, 3, lam)
    np.testing.assert_allclose(reval, taylor, rtol=1e-12, atol=1e-9)
    # sub-additive: the unit never needs more than its positions alone
    alone = vega_loss(e * up, -e * down)
    assert (reval <= np.bincount(unit, weights=alone, minlength=2) + 1e-9).all()


def test_revaluation_charges_drop_volga_and_higher_order_gamma(tmp_path):
    """Long out-of-the-money strangle (vol falls): revalued loss < vega x fall; ATM short straddle: gamma."""
    import greeksmargin as gm
    from greeksmargin.engine.models import load_model, models_dir

    mk = {"valuation_time": "2026-11-20T08:00:00Z", "underlyings": {"SPX": {"spot": 100.0, "rate": 0.0, "surface": {
        "axis": "log_moneyness", "expiries": ["2026-12-20T08:00:00Z"], "points": [0.0], "vols": [[0.2]]}}}}

    def book(q, kc, kp):
        return pd.DataFrame({
            "account": "a", "instrument": ["c", "p"], "underlying": "SPX", "kind": "option",
            "option_type": ["call", "put"], "strike": [kc, kp], "expiry": "2026-12-20T08:00:00Z",
            "quantity": [q, q], "multiplier": 1.0, "settlement": "linear", "premium_currency": "USD"})

    text = (models_dir() / "greeks-default.toml").read_text()
    assert text.count('method = "revaluation"') == 3
    p = tmp_path / "taylor.toml"
    p.write_text(text.replace('method = "revaluation"\n', ""))  # the schema default
    reval, taylor = load_model("greeks-default"), load_model(p)
    assert {taylor.params.components[c]["method"] for c in ("delta", "gamma", "vega")} == {"taylor"}
    strangle = book(1.0, 105.0, 95.0)
    r_v = gm.compute_margin(strangle, mk, reval).by_underlying.iloc[0]
    t_v = gm.compute_margin(strangle, mk, taylor).by_underlying.iloc[0]
    assert 0 < r_v["vega"] < t_v["vega"]
    straddle = book(-1.0, 100.0, 100.0)
    r_g = gm.compute_margin(straddle, mk, reval).by_underlying.iloc[0]
    t_g = gm.compute_margin(straddle, mk, taylor).by_underlying.iloc[0]
    assert 0 < r_g["gamma"] < t_g["gamma"]
    assert r_g["gamma"] == pytest.approx(t_g["gamma"], rel=0.1)  # second order dominates at a 4.7% shock
    # call spread (long ATM, short 105): long gamma, so the fall costs less than delta x fall; a future: equal
    spread = book(1.0, 100.0, 105.0).assign(option_type="call", quantity=[1.0, -1.0])
    r_d = gm.compute_margin(spread, mk, reval).by_underlying.iloc[0]
    t_d = gm.compute_margin(spread, mk, taylor).by_underlying.iloc[0]
    assert 0 < r_d["delta"] < t_d["delta"]
    fut = spread.iloc[:1].assign(kind="future", option_type=None, strike=np.nan, quantity=-3.0)
    r_f = gm.compute_margin(fut, mk, reval).by_underlying.iloc[0]
    t_f = gm.compute_margin(fut, mk, taylor).by_underlying.iloc[0]
    assert r_f["delta"] == pytest.approx(t_f["delta"], rel=1e-9) and r_f["delta"] > 0
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('method = "revaluation"', 'method = "exact"', 1))
    with pytest.raises(gm.errors.ModelError, match=r"components\.delta\.method"):
        load_model(bad)


def test_deribit_standard_formulas_per_contract_in_coin():
    # short call OTM by 10%: max(0.15 - 0.1, 0.1) + mark = 0.1 + 0.02; MM 0.075 + 0.02
    im, mm = option_standard_margin([True], [True], [-1.0], [100.0], [110.0], [0.02], [1.0],
                                    im_base=0.15, im_min=0.10, mm_base=0.075, long_premium=False)
    assert im[0] == pytest.approx(0.12) and mm[0] == pytest.approx(0.095)
    # short put ATM, mark 0.05: IM max(0.15 + 0.05, MM); MM = max(0.075, 0.075 x 0.05) + 0.05
    im, mm = option_standard_margin([True], [False], [-2.0], [100.0], [100.0], [0.05], [1.0],
                                    im_base=0.15, im_min=0.10, mm_base=0.075, long_premium=False)
    assert im[0] == pytest.approx(2 * 0.20) and mm[0] == pytest.approx(2 * 0.125)
    # linear analogue: percentages x S; long option: premium only when asked
    im, mm = option_standard_margin([True, True], [True, True], [-1.0, 1.0], [100.0] * 2, [100.0] * 2, [5.0] * 2,
                                    [100.0] * 2, im_base=0.15, im_min=0.10, mm_base=0.075, long_premium=True)
    assert np.allclose(im, [20.0, 5.0]) and np.allclose(mm, [12.5, 0.0])


def test_expressions_parse_validate_and_evaluate():
    e = parse_expression("min(max(scan, delta + gamma) + 2 * floor, cap)", ["scan", "delta", "gamma", "floor", "cap"])
    v = evaluate(e, {"scan": np.array([5.0, 1.0]), "delta": np.array([3.0, 4.0]), "gamma": np.array([1.0, 1.0]),
                     "floor": np.array([1.0, 0.0]), "cap": np.array([np.inf, 2.0])})
    assert np.allclose(v, [7.0, 2.0])
    with pytest.raises(ValueError, match="unknown component.*vegga"):
        parse_expression("scan + vegga", ["scan", "vega"])
    for bad in ("__import__('os')", "scan / 2", "scan if 1 else 0", "max(scan)", "scan.real"):
        with pytest.raises(ValueError, match="expression"):
            parse_expression(bad, ["scan"])


def test_correlation_aggregation_bounds_and_euler_shares():
    x = np.array([3.0, 4.0, 5.0, 1.0])
    acc = np.array([0, 0, 1, 1])
    und = np.array([0, 1, 0, 1])
    for rho, expect0 in ((1.0, 7.0), (0.0, 5.0)):
        c = correlation_matrix(["A", "B"], rho, {})
        tot, share = aggregate_correlation(x, acc, und, 2, c)
        assert tot[0] == pytest.approx(expect0)
        assert np.allclose(np.bincount(acc, weights=share), tot)
    c = correlation_matrix(["A", "B"], 0.0, {("A", "B"): -1.0})
    tot, share = aggregate_correlation(x, acc, und, 2, c)
    assert tot[1] == pytest.approx(5.0)  # never below the largest single unit
    assert np.allclose(np.bincount(acc, weights=share), tot)


@settings(max_examples=40, deadline=None)
@given(arrays(float, 3, elements=st.floats(0, 1e6)), st.floats(-1.0, 1.0))
def test_correlation_total_between_largest_and_sum(x, rho):
    c = correlation_matrix(["A", "B", "C"], rho, {})
    tot, share = aggregate_correlation(x, np.zeros(3, dtype=np.intp), np.arange(3), 1, c)
    assert x.max() * (1 - 1e-12) <= tot[0] <= x.sum() * (1 + 1e-12) + 1e-9
    assert share.sum() == pytest.approx(tot[0], rel=1e-9, abs=1e-6)


# ---- direction-aware Greeks charges and the calendar roll (calibration follow-up)
def test_delta_charge_uses_the_losing_direction():
    d = np.array([100.0, -100.0, 0.0])
    assert np.allclose(delta_charge(d, 0.05, 0.03), [5.0, 3.0, 0.0])  # long x fall, short x rise
    assert np.allclose(delta_charge(d, 0.05), np.abs(d) * 0.05)  # symmetric without an up shock


@settings(max_examples=60, deadline=None)
@given(arrays(float, 6, elements=finite), arrays(float, 6, elements=finite),
       st.floats(0, 0.5), st.floats(0, 0.5), st.floats(0, 1))
def test_directional_vega_is_subadditive_and_homogeneous(e1, e2, up, down, lam):
    unit = np.array([0, 0, 0, 1, 1, 1])
    bucket = np.array([0, 1, 1, 0, 2, 2])

    def charge(e):
        return vega_charge(e, unit, bucket, 2, 3, lam, shock_up=np.array([up, up]), shock_down=np.array([down, down]))

    c1, c2, c12 = charge(e1), charge(e2), charge(e1 + e2)
    assert (c12 >= 0).all()
    assert (c12 <= c1 + c2 + 1e-6 * (1 + np.abs(e1).sum() + np.abs(e2).sum())).all()
    assert np.allclose(charge(3.0 * e1), 3.0 * c1, rtol=1e-9, atol=1e-6)


def test_directional_vega_matches_symmetric_rule_and_charges_long_vega_with_the_fall():
    e = np.array([10.0, -4.0, 7.0])
    unit, bucket = np.zeros(3, dtype=int), np.array([0, 0, 1])
    sym = vega_charge(e * 0.3, unit, bucket, 1, 2, 0.5)
    both = vega_charge(e, unit, bucket, 1, 2, 0.5, shock_up=np.array([0.3]), shock_down=np.array([0.3]))
    assert np.allclose(sym, both)
    long_only = vega_charge(np.array([10.0]), np.zeros(1, int), np.zeros(1, int), 1, 1, 0.0,
                            shock_up=np.array([0.3]), shock_down=np.array([0.1]))
    short_only = vega_charge(np.array([-10.0]), np.zeros(1, int), np.zeros(1, int), 1, 1, 0.0,
                             shock_up=np.array([0.3]), shock_down=np.array([0.1]))
    assert np.allclose(long_only, 1.0) and np.allclose(short_only, 3.0)


def test_roll_charge_calendar_scope_charges_only_offsetting_expiries():
    from greeksmargin.methodologies.house.contingency import roll_unit_charge

    b = np.array([[5.0, 0.0], [5.0, 3.0], [5.0, -4.0], [0.0, 0.0]])  # outright, same direction, calendar, none
    assert np.allclose(roll_unit_charge(b, "gross"), [5.0, 8.0, 9.0, 0.0])
    assert np.allclose(roll_unit_charge(b, "calendar"), [0.0, 0.0, 8.0, 0.0])  # 2 x the smaller leg
    with pytest.raises(ValueError, match="scope"):
        roll_unit_charge(b, "net")


def test_house_model_outright_future_pays_no_roll_and_directional_delta():
    """compute_margin: an outright SPX future pays no roll (calendar scope); a calendar spread does."""
    import pandas as pd

    from greeksmargin.book.market import load_market
    from greeksmargin.engine.margin import compute_margin
    from greeksmargin.engine.models import load_model

    model = load_model("greeks-default")
    d = model.raw["components"]["delta"]
    vt = pd.Timestamp("2020-01-02", tz="UTC")
    e1, e2 = vt + pd.Timedelta(days=30), vt + pd.Timedelta(days=120)
    pos = pd.DataFrame({
        "account": ["long", "short", "cal", "cal"], "instrument": ["F1", "F1", "F1", "F2"], "underlying": "SPX",
        "kind": "future", "option_type": None, "strike": np.nan, "expiry": [e1, e1, e1, e2],
        "quantity": [1.0, -1.0, 1.0, -1.0], "multiplier": 1.0, "settlement": "linear", "premium_currency": "USD",
    })
    mk = load_market({"valuation_time": vt.isoformat(), "underlyings": {"SPX": {"spot": 3000.0, "rate": 0.0}}})
    res = compute_margin(pos, mk, model)
    comp = res.components.pivot_table(index="account", columns="component", values="amount", aggfunc="sum")
    assert comp.at["long", "roll"] == 0 and comp.at["short", "roll"] == 0
    assert comp.at["cal", "roll"] > 0
    assert comp.at["long", "delta"] == pytest.approx(3000.0 * d["price_shock_down_by_underlying"]["SPX"], rel=1e-6)
    assert comp.at["short", "delta"] == pytest.approx(3000.0 * d["price_shock_up_by_underlying"]["SPX"], rel=1e-6)
