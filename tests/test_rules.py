import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from greeksmargin.rules.combine import aggregate_correlation, correlation_matrix, evaluate, parse_expression
from greeksmargin.rules.contingency import option_standard_margin
from greeksmargin.rules.scan import group_sum, offset_scan, scan_loss
from greeksmargin.rules.sensitivity import delta_charge, expiry_bucket, gamma_charge, vega_charge

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
