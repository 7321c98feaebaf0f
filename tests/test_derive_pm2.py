"""Derive PM2 (greeksmargin.methodologies.derive_pm2, greeksmargin.validation.derive_pm2)."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greeksmargin.engine.params_files import load_derive_pm2_params
from greeksmargin.errors import CaseFormatError, InputError, ModelError
from greeksmargin.methodologies.derive_pm2 import (
    SUMMARY_KEYS,
    ForwardLine,
    MarginParams,
    PM2Params,
    Portfolio,
    derive_pm2_margin,
    forward_portions,
    skew_vol_multipliers,
    static_discounts,
    vol_shock_multipliers,
)
from greeksmargin.validation.derive_pm2 import TOLERANCE_REL, run

REPO = Path(__file__).resolve().parents[1]
CASES_FILE = REPO / "validation" / "cases" / "derive_pm2" / "cases.json"
MODEL_FILE = REPO / "models" / "derive-pm2.toml"
CASES = json.loads(CASES_FILE.read_text())
BY_ID = {c["id"]: c for c in CASES}
DEFAULT_PARAMS = CASES[0]["parameters"]


def _rel(got: float, want: float) -> float:
    return abs(got - want) / max(1.0, abs(want))


def _portfolio(spot: float, options=(), forwards=(), **kw) -> dict:
    """A portfolio dict in the case format; options (s, K, is_call, amount, vol), forwards (s, F, fc, r, rc, vc)."""
    pf = {"spot": spot, "spot_confidence": 1.0, "cash": 0.0, "stable_price": 1.00019088635, "stable_confidence": 1.0,
          "perp": {"size": 0, "price": 0, "confidence": 0, "unrealised_pnl": 0.0, "unrealised_funding": 0.0},
          "collaterals": [],
          "options": [dict(zip(("seconds_to_expiry", "strike", "is_call", "amount", "vol"), o, strict=True))
                      for o in options],
          "forwards": [dict(zip(("seconds_to_expiry", "forward", "forward_confidence", "rate", "rate_confidence",
                                 "vol_confidence"), f, strict=True)) for f in forwards]}
    pf.update(kw)
    return pf


def _params(**groups) -> dict:
    p = copy.deepcopy(DEFAULT_PARAMS)
    for g, kv in groups.items():
        p[g].update(kv)
    return p


# More of Derive's published PM2 cases (derivexyz/v2-core test/risk-managers/unit-tests/PMRM_2/portfolio_cases,
# Python-generated expected figures): discounting with a negative rate, minimum vol shock, settlement 1 second
# before expiry, post expiry, a DTE floor of 399 days, an extreme negative static discount.
S_ETH = 2681.6029850999994
EXTRA = {
    "test_55_negative_rate": (
        _portfolio(95663.50604855, [(18938852, 100000.0, True, -1.0, 0.5543377511787965),
                                    (18938852, 110000.0, True, 1.0, 0.5592157396329432),
                                    (18938852, 100000.0, False, 1.0, 0.5543377511787965),
                                    (18938852, 110000.0, False, -1.0, 0.5592157396329432)],
                   [(18938852, 100374.61000117072, 1.0, -1.2, 1.0, 0.95)]),
        _params(), {"im": -10000.000000000004, "mm": -10000.000000000004, "option_mtm": -10000.0}),
    "test_58_min_eval_vol_shock": (
        _portfolio(2500.0, [(794852, 2500.0, True, -15.0, 0.14679432572503934)],
                   [(794852, 2501.396758501672, 1.0, 0.15000000000000002, 1.0, 0.4)], spot_confidence=0.9),
        _params(vol_shock={"min_vol_eval_shocked": 1.0}),
        {"im": -29954.541758564064, "mm": -5997.725418886978, "worst_regular_loss": -6909.081698385438,
         "worst_tail_loss": -1346.7101453990604, "worst_skew_loss": -1.430471613813836,
         "forward_contingency": -745.5316866321173, "option_mtm": -357.9600601786269, "oracle_contingency": -22500.0}),
    "test_49_low_spot_conf_call_spread": (
        _portfolio(3000.0, [(3214052, 1700.0, True, 1.0, 0.981510069021587),
                            (3214052, 1800.0, True, -1.0, 0.938667615013681)],
                   [(3214052, 3014.178509176334, 1.0, 0.21000000000000002, 1.0, 0.95)], spot_confidence=0.2),
        _params(),
        {"im": -4740.496330315975, "mm": 69.65288097789352, "worst_regular_loss": -20.746056469341525,
         "worst_tail_loss": -4.537361136958174, "worst_skew_loss": -7.627110532798554,
         "forward_contingency": -0.7911250264267096, "option_mtm": 95.24972615336674,
         "mm_option_contingency": -9.0, "im_option_contingency": -6.0, "oracle_contingency": -4800.0}),
    "test_54_cap_mark_up_discounting": (
        _portfolio(95663.50604855, [(18938852, 100000.0, True, -1.0, 0.5543377511787965),
                                    (18938852, 110000.0, True, 1.0, 0.5592157396329432),
                                    (18938852, 100000.0, False, 1.0, 0.5543377511787965),
                                    (18938852, 110000.0, False, -1.0, 0.5592157396329432)],
                   [(18938852, 100374.61000117072, 1.0, 0.2, 1.0, 0.95)]),
        _params(margin={"short_rate_multscale": 10.0, "short_rate_addscale": 1.2}),
        {"im": -10000.000000000004, "mm": -9773.646805520264, "option_mtm": -8868.234027601304,
         "worst_regular_loss": -1131.7659723987, "worst_tail_loss": -123.46537880712908,
         "worst_skew_loss": -1131.765972398698}),
    "test_59_vol_bounded_at_0": (
        _portfolio(95663.50604855, [(794852, 2500.0, True, 1.0, 0.15213047481388386)],
                   [(794852, 95776.67392708939, 1.0, 0.15000000000000002, 1.0, 0.4)]),
        _params(vol_shock={"volrangedown": 2}),
        {"im": 14148.379309536263, "mm": 75822.12428040088, "worst_regular_loss": -21378.206708673126,
         "worst_tail_loss": -3806.867781586758, "worst_skew_loss": -5156.509161626585,
         "forward_contingency": -2363.2844845036507, "option_mtm": 92924.68964733939,
         "oracle_contingency": -57398.10362913}),
    "test_60_settlement_near_expiry": (
        _portfolio(S_ETH, [(1, 2700.0, True, -1.0, 0.6360190705815766)],
                   [(1, 2682.9997436016715, 1.0, 0.15, 1.0, 0.95)]),
        _params(vol_shock={"min_vol_eval_shocked": 1.0}),
        {"im": -13.408014925499998, "mm": -8.044808955299999, "option_mtm": 0.0, "forward_contingency": 0.0,
         "worst_regular_loss": 0.0, "worst_tail_loss": 0.0}),
    "test_66_post_expiry": (
        _portfolio(S_ETH, [(0, 2500.0, True, -1.0, 2511.421980938193)], [(0, 2691.6029850999994, 1.0, 0.22, 1.0, 1.0)]),
        _params(), {"im": -205.01100002549938, "mm": -199.64779405529939, "option_mtm": -191.6029850999994,
                    "worst_regular_loss": 0.0, "worst_tail_loss": 0.0, "worst_skew_loss": 0.0}),
    "test_69_change_dte_min": (
        _portfolio(S_ETH, [(11076452, 2500.0, True, -1.0, 0.6545248452671644)],
                   [(11076452, 2745.2490272903915, 1.0, 0.27, 1.0, 0.95)]),
        _params(vol_shock={"dte_floor": 399}),
        {"im": -1047.5569536649255, "mm": -933.1328021856968, "worst_regular_loss": -545.3047275451434,
         "worst_tail_loss": -95.92938816468845, "worst_skew_loss": -52.02380161160437,
         "forward_contingency": -93.0450807050663, "option_mtm": -488.8442111942821}),
    "test_70_extreme_static_disc_neg": (
        _portfolio(S_ETH, [(11076452, 2500.0, True, -1.0, 0.6545248452671644)],
                   [(11076452, 2745.2490272903915, 1.0, 0.27, 1.0, 0.95)]),
        _params(margin={"base_static_discount_neg": 3}),
        {"im": -1069.038400215286, "mm": -950.3179594259852, "worst_regular_loss": -566.7861740955038,
         "worst_tail_loss": -95.94145418020202}),
}


# ----------------------------------------------------------------------------------------- published cases
def test_shipped_suite_passes_every_case():
    res = run(CASES_FILE)
    assert res.suite == "derive-pm2"
    assert (res.n_passed, res.n_failed) == (50, 0)
    worst = max(_rel(c.computed[k], c.expected[k]) for c in res.cases for k in ("im", "mm"))
    assert worst < 1e-9


@pytest.mark.parametrize("cid", sorted(BY_ID))
def test_every_intermediate_figure_matches(cid):
    case = BY_ID[cid]
    got = derive_pm2_margin(case["portfolio"], case["parameters"]).summary()
    for key, want in case["expected"].items():
        assert _rel(got[key], want) <= TOLERANCE_REL, (cid, key, got[key], want)


@pytest.mark.parametrize("name", sorted(EXTRA))
def test_more_derive_cases(name):
    pf, params, expected = EXTRA[name]
    got = derive_pm2_margin(pf, params).summary()
    for key, want in expected.items():
        assert _rel(got[key], want) <= TOLERANCE_REL, (name, key, got[key], want)


def test_computed_keys_mirror_expected_and_folder_runs(tmp_path):
    case = copy.deepcopy(BY_ID[12])
    case["expected"] = {"im": case["expected"]["im"], "mm": case["expected"]["mm"], "option_mtm": -1186.4185694587657}
    (tmp_path / "a.json").write_text(json.dumps([case]))
    (tmp_path / "notes.json").write_text(json.dumps({"hello": 1}))  # not of the format: skipped in a folder
    res = run(tmp_path)
    assert len(res.cases) == 1
    assert set(res.cases[0].computed) == {"im", "mm", "option_mtm"}
    assert res.cases[0].passed
    assert res.to_dict()["summary"] == {"passed": 1, "failed": 0, "not_checked": 0}


def test_case_without_parameters_uses_shipped_model():
    case = copy.deepcopy(BY_ID[12])
    del case["parameters"]
    res_case = run_single(case)
    assert res_case.passed and res_case.error is None


def run_single(case):
    from greeksmargin.validation.derive_pm2 import run_case

    return run_case(case)


def test_wrong_expected_value_fails_without_error():
    case = copy.deepcopy(BY_ID[29])
    case["expected"]["im"] += 0.01 * max(1.0, abs(case["expected"]["im"]))
    res = run_single(case)
    assert not res.passed and res.error is None


# ----------------------------------------------------------------------------------------- malformed input
def test_malformed_case_reported_and_run_goes_on(tmp_path):
    bad = copy.deepcopy(BY_ID[12])
    bad["id"] = "broken"
    del bad["portfolio"]["spot"]
    bad_vol = copy.deepcopy(BY_ID[12])
    bad_vol["id"] = "bad-vol"
    bad_vol["parameters"]["scenarios"][0]["vol"] = "sideways"
    f = tmp_path / "cases.json"
    f.write_text(json.dumps([bad, BY_ID[1], bad_vol, "not a case"]))
    res = run(f)
    assert [c.passed for c in res.cases] == [False, True, False, False]
    assert "portfolio.spot" in res.cases[0].error and "missing key 'spot'" in res.cases[0].error
    assert "vol must be one of" in res.cases[2].error and "parameters.scenarios[0].vol" in res.cases[2].error
    assert "must be an object" in res.cases[3].error


def test_file_not_of_the_format(tmp_path):
    f = tmp_path / "span.json"
    f.write_text(json.dumps([{"id": 1, "risk_arrays": []}]))
    with pytest.raises(CaseFormatError, match="span.json.*missing key 'portfolio'"):
        run(f)
    g = tmp_path / "bad.json"
    g.write_text("{not json")
    with pytest.raises(CaseFormatError, match="not a JSON case file"):
        run(g)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CaseFormatError, match="no Derive PM2 case file"):
        run(empty)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda pf: pf["options"][0].update(strike=-5.0), r"portfolio.options\[0\].strike.*must be > 0"),
        (lambda pf: pf["options"][0].update(vol="high"), r"portfolio.options\[0\].vol.*expected a number"),
        (lambda pf: pf["options"][0].update(seconds_to_expiry=123), r"no forward line for seconds_to_expiry 123"),
        (lambda pf: pf.update(stable_price=0), r"portfolio.stable_price.*must be > 0"),
        (lambda pf: pf["options"][0].pop("is_call"), r"missing key 'is_call'"),
        (lambda pf: pf.update(collaterals={"a": 1}), r"portfolio.collaterals.*expected a list"),
    ],
)
def test_bad_portfolio_messages(mutate, message):
    pf = copy.deepcopy(BY_ID[12]["portfolio"])
    mutate(pf)
    with pytest.raises(InputError, match=message):
        derive_pm2_margin(pf, DEFAULT_PARAMS)


def test_bad_parameter_messages():
    p = copy.deepcopy(DEFAULT_PARAMS)
    del p["skew_shock"]
    with pytest.raises(InputError, match="parameters.skew_shock.*missing key 'skew_shock'"):
        PM2Params.from_dict(p)
    p = copy.deepcopy(DEFAULT_PARAMS)
    del p["margin"]["im_loss_factor"]
    with pytest.raises(InputError, match="parameters.margin.im_loss_factor"):
        PM2Params.from_dict(p)
    with pytest.raises(InputError, match="non-empty list of scenarios"):
        PM2Params.from_dict({**DEFAULT_PARAMS, "scenarios": []})


def test_model_file_is_the_published_default_and_bad_file_names_key(tmp_path):
    assert load_derive_pm2_params(MODEL_FILE) == PM2Params.from_dict(DEFAULT_PARAMS)
    bad = tmp_path / "bad.toml"
    bad.write_text(MODEL_FILE.read_text().replace("mm_loss_factor = 0.8", "mm_loss_factor = \"x\""))
    with pytest.raises(ModelError, match="margin.mm_loss_factor"):
        load_derive_pm2_params(bad)


# ------------------------------------------------------------------------------------------ building blocks
def test_vol_shocks_and_static_discounts_match_published_precomputes():
    # Derive's case 12 reports VolShockUpMultiplier / DownMultiplier and discount_factors for 794852 s, r = 0.15
    p = PM2Params.from_dict(DEFAULT_PARAMS)
    up, down = vol_shock_multipliers(794852, p.vol_shock)
    assert up == pytest.approx(1.712811375927374, rel=1e-12)
    assert down == pytest.approx(0.6079537432399443, rel=1e-12)
    t = 794852 / (365 * 86400)
    pos, neg = static_discounts(t, 0.15, math.exp(-0.15 * t), p.margin)
    assert pos == pytest.approx(0.9445087287221925, rel=1e-12)
    assert neg == pytest.approx(1.0037878445554764, rel=1e-12)
    # the negative discount is capped at 1 / df (Derive's case 70: BASE_STATIC_DISCOUNT_NEG = 3)
    m3 = MarginParams(**{**p.margin.__dict__, "base_static_discount_neg": 3.0})
    t2 = 11076452 / (365 * 86400)
    assert static_discounts(t2, 0.27, math.exp(-0.27 * t2), m3)[1] == pytest.approx(math.exp(0.27 * t2))


def test_vol_shock_floor_and_power_switch():
    p = PM2Params.from_dict(DEFAULT_PARAMS).vol_shock
    # below the DTE floor (1 day) the multiplier stays at its floor value; the short power applies up to 30 days
    assert vol_shock_multipliers(10, p) == vol_shock_multipliers(86400, p)
    assert vol_shock_multipliers(30 * 86400, p)[0] == pytest.approx(1.5)
    assert vol_shock_multipliers(60 * 86400, p)[0] == pytest.approx(1 + 0.5 * 0.5 ** 0.13)
    assert vol_shock_multipliers(1, p)[1] >= 0.0


def test_skew_multipliers_match_published_figures():
    p = PM2Params.from_dict(DEFAULT_PARAMS).skew_shock
    t = 794852 / (365 * 86400)
    m = skew_vol_multipliers(np.array([100000.0]), 95776.67392708939, t, True, p)
    assert m[0] == pytest.approx(1.01652586234559, rel=1e-10)
    # abs: |k| and both sides go up; linear: the wing below the forward goes down
    k = np.array([80000.0, 120000.0])
    lin = skew_vol_multipliers(k, 100000.0, t, True, p)
    ab = skew_vol_multipliers(k, 100000.0, t, False, p)
    assert lin[0] < 1 < lin[1] and ab[0] > 1 and ab[1] > 1
    cap = p.linear_cbase * math.sqrt(t) + p.linear_scale_cap
    far = skew_vol_multipliers(np.array([1.0, 1e9]), 100000.0, t, True, p)
    assert far == pytest.approx([1 - cap, 1 + cap])


def test_forward_portions_settlement_window():
    f = 2000.0
    assert forward_portions(ForwardLine(3600, f)) == (0.0, f)
    assert forward_portions(ForwardLine(1800, f)) == (0.0, f)
    assert forward_portions(ForwardLine(900, f)) == pytest.approx((1000.0, 1000.0))
    assert forward_portions(ForwardLine(0, f)) == (f, 0.0)
    assert forward_portions(ForwardLine(-50, f)) == (f, 0.0)
    assert forward_portions(ForwardLine(450, f, settlement_twap=1900.0)) == pytest.approx((1425.0, 500.0))
    assert forward_portions(ForwardLine(450, f, fixed_portion=1.0, variable_portion=2.0)) == (1.0, 2.0)


def test_inside_window_only_the_variable_part_moves():
    # a long call 15 min before expiry, deep in the money: the +18% scenario moves the forward by 9% only
    pf = _portfolio(2000.0, [(900, 1000.0, True, 1.0, 0.5)], [(900, 2000.0, 1.0, 0.0, 1.0, 1.0)])
    res = derive_pm2_margin(pf, _params(margin={"base_static_discount": 1.0, "long_rate_addscale": 0.0}))
    sc = PM2Params.from_dict(DEFAULT_PARAMS).scenarios
    i = next(j for j, s in enumerate(sc) if s.spot_multiplier == 1.18)
    assert res.scenario_pnl[i] == pytest.approx(2000.0 * 0.5 * 0.18, rel=1e-9)
    assert res.option_mtm == pytest.approx(1000.0, rel=1e-9)


def test_expired_options_count_at_settlement_value():
    pf = _portfolio(2500.0, [(0, 2000.0, True, 2.0, 0.8), (0, 3000.0, False, 1.0, 0.8)],
                    [(0, 2600.0, 1.0, 0.1, 1.0, 1.0)])
    res = derive_pm2_margin(pf, DEFAULT_PARAMS)
    assert res.option_mtm == pytest.approx(2 * 600.0 + 400.0)
    assert res.forward_contingency == 0.0
    regular = res.scenario_pnl[: 23]
    # only the static discount of the (positive) expiry value remains: the contract keeps BASE_STATIC_DISCOUNT
    assert regular == pytest.approx(np.full(23, -0.05 * 1600.0))
    no_disc = derive_pm2_margin(pf, {**DEFAULT_PARAMS, "settlement": {"static_discount_at_expiry": False}})
    assert np.allclose(no_disc.scenario_pnl, 0.0)


def test_naked_shorts_net_per_strike_and_duplicates_aggregate():
    fw = [(794852, 100000.0, 1.0, 0.1, 1.0, 1.0)]
    spread = _portfolio(100000.0, [(794852, 90000.0, True, -2.0, 0.5), (794852, 90000.0, False, 1.0, 0.5),
                                   (794852, 110000.0, False, -1.0, 0.5)], fw)
    res = derive_pm2_margin(spread, DEFAULT_PARAMS)
    assert res.mm_option_contingency == pytest.approx(-(1 + 1) * 100000.0 * 0.003)
    assert res.im_option_contingency == pytest.approx(-2 * 100000.0 * 0.002)
    split = _portfolio(100000.0, [(794852, 90000.0, True, -1.5, 0.5), (794852, 90000.0, True, -0.5, 0.5),
                                  (794852, 90000.0, False, 1.0, 0.5), (794852, 110000.0, False, -1.0, 0.5)], fw)
    assert derive_pm2_margin(split, DEFAULT_PARAMS).summary() == pytest.approx(res.summary())


def test_peg_loss_raises_the_im_factor_only():
    case = BY_ID[12]
    pf = {**case["portfolio"], "stable_price": 0.9}
    res = derive_pm2_margin(pf, case["parameters"])
    assert res.im_loss_factor == pytest.approx(1.0 + 0.08 * 2.0)
    base = derive_pm2_margin(case["portfolio"], case["parameters"])
    assert res.mm == pytest.approx(base.mm)
    assert res.im < base.im


def test_oracle_contingency_of_a_low_confidence_perp():
    # Derive's case 30: perp conf below CONF_THRESHOLD adds (1 - c) x notional to IM only
    case = BY_ID[30]
    res = derive_pm2_margin(case["portfolio"], case["parameters"])
    assert res.oracle_contingency == pytest.approx(case["expected"]["oracle_contingency"])
    assert res.oracle_contingency < 0 and res.mm == pytest.approx(case["expected"]["mm"])


def test_result_explain_and_worst_scenario():
    res = derive_pm2_margin(BY_ID[44]["portfolio"], BY_ID[44]["parameters"])
    assert res.min_span == pytest.approx(min(res.forward_contingency, res.scenario_pnl.min()))
    assert res.scenario_kind.count("skew") == 2 and res.scenario_kind.count("tail") == 6
    assert "MM =" in res.explain() and "oracle" in res.explain()
    assert set(res.summary()) == set(SUMMARY_KEYS)


# -------------------------------------------------------------------------------------------- properties
@settings(max_examples=25, deadline=None)
@given(cid=st.sampled_from([12, 16, 33, 44, 62]), cash=st.floats(-1e7, 1e7, allow_nan=False))
def test_cash_adds_one_for_one(cid, cash):
    case = BY_ID[cid]
    base = derive_pm2_margin(case["portfolio"], case["parameters"])
    pf = {**case["portfolio"], "cash": case["portfolio"]["cash"] + cash}
    res = derive_pm2_margin(pf, case["parameters"])
    assert res.im - base.im == pytest.approx(cash, abs=1e-6 * max(1.0, abs(base.im)))
    assert res.mm - base.mm == pytest.approx(cash, abs=1e-6 * max(1.0, abs(base.mm)))


@settings(max_examples=15, deadline=None)
@given(cash=st.floats(-1e6, 1e6, allow_nan=False), spot=st.floats(1.0, 1e6))
def test_empty_portfolio_is_its_cash(cash, spot):
    res = derive_pm2_margin(_portfolio(spot, cash=cash), DEFAULT_PARAMS)
    assert res.im == cash and res.mm == cash


def test_a_zero_amount_option_changes_nothing():
    pf = _portfolio(2000.0, [(794852, 2100.0, True, 0.0, 0.6)], [(794852, 2010.0, 1.0, 0.1, 1.0, 1.0)], cash=50.0)
    res = derive_pm2_margin(pf, DEFAULT_PARAMS)
    assert res.im == pytest.approx(50.0) and res.mm == pytest.approx(50.0)


@settings(max_examples=30, deadline=None)
@given(
    amounts=st.lists(st.floats(-20, 20, allow_nan=False), min_size=1, max_size=6),
    strikes=st.lists(st.floats(0.5, 1.6), min_size=6, max_size=6),
    calls=st.lists(st.booleans(), min_size=6, max_size=6),
    days=st.lists(st.sampled_from([0.01, 0.5, 3, 20, 45, 200]), min_size=6, max_size=6),
    perp=st.floats(-5, 5, allow_nan=False),
)
def test_im_never_above_mm(amounts, strikes, calls, days, perp):
    spot = 3000.0
    opts = [(d * 86400, spot * k, c, a, 0.7) for a, k, c, d in zip(amounts, strikes, calls, days, strict=False)]
    fwds = [(d * 86400, spot * 1.01, 1.0, 0.1, 1.0, 0.9) for d in sorted(set(o[0] / 86400 for o in opts))]
    pf = _portfolio(spot, opts, fwds, perp={"size": perp, "price": spot, "confidence": 0.5,
                                            "unrealised_pnl": 0.0, "unrealised_funding": 0.0})
    res = derive_pm2_margin(pf, DEFAULT_PARAMS)
    assert res.im <= res.mm + 1e-9 * max(1.0, abs(res.mm))
    assert res.min_span <= 0.0
    assert all(math.isfinite(v) for v in res.summary().values())


def test_portfolio_round_trip_types():
    pf = Portfolio.from_dict(BY_ID[62]["portfolio"])
    assert len(pf.options) == 20 and all(isinstance(o.is_call, bool) for o in pf.options)
    assert derive_pm2_margin(pf, PM2Params.from_dict(DEFAULT_PARAMS)).im == pytest.approx(
        derive_pm2_margin(BY_ID[62]["portfolio"], DEFAULT_PARAMS).im)


def test_cli_validate_writes_the_published_json_shape(tmp_path, capsys):
    from greeksmargin.cli import main

    out = tmp_path / "out.json"
    assert main(["validate", "derive-pm2", "--cases", str(CASES_FILE), "--json", str(out), "--quiet"]) == 0
    assert "derive-pm2: 50 passed, 0 failed, 0 not checked" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert doc["suite"] == "derive-pm2" and doc["summary"] == {"passed": 50, "failed": 0, "not_checked": 0}
    first = doc["cases"][0]
    assert set(first) == {"id", "computed", "expected", "passed", "status", "fields"}
    assert set(first["computed"]) == set(first["expected"]) == set(first["fields"])
    # the README pass rule (im, mm) is checked; the intermediate figures are reported, not checked, with the reason
    assert first["fields"]["im"]["ok"] is True and first["fields"]["mm"]["ok"] is True
    tail = first["fields"]["worst_tail_loss"]
    assert tail["ok"] is None and "pass rule" in tail["reason"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"id": 1, "positions": []}]))
    assert main(["validate", "derive-pm2", "--cases", str(bad)]) == 2
    assert "missing key 'portfolio'" in capsys.readouterr().err


def test_a_single_case_object_file(tmp_path):
    f = tmp_path / "one.json"
    f.write_text(json.dumps(BY_ID[33]))
    res = run(f)
    assert len(res.cases) == 1 and res.cases[0].id == 33 and res.cases[0].passed


def test_expired_expiry_with_zero_dte_floor_stays_finite():
    pf = _portfolio(2500.0, [(0, 2000.0, True, -1.0, 0.8)], [(0, 2600.0, 1.0, 0.1, 1.0, 1.0)])
    res = derive_pm2_margin(pf, _params(vol_shock={"dte_floor": 0.0}))
    assert all(math.isfinite(v) for v in res.summary().values())
    assert res.option_mtm == pytest.approx(-600.0)


def test_shipped_model_loads_as_pm2_params():
    from greeksmargin.engine.models import load_model

    assert load_model("derive-pm2").params == load_derive_pm2_params(MODEL_FILE)
