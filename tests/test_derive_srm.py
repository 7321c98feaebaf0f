"""Derive standard manager (greeksmargin.methodologies.derive_srm) and its validation suite."""

from __future__ import annotations

import copy
import json
from fractions import Fraction
from pathlib import Path

import pytest

from greeksmargin.engine.models import load_model
from greeksmargin.errors import CaseFormatError, InputError, ModelError
from greeksmargin.methodologies.derive_srm import (
    SRMExpiry,
    SRMMarket,
    SRMOption,
    SRMPortfolio,
    derive_srm_margin,
    params_from_dict,
)
from greeksmargin.pricing import black76_price
from greeksmargin.validation.core import SUITES, run_suite
from greeksmargin.validation.derive_srm import run_case
from greeksmargin.validation.derive_srm_harness import Feeds, apply_overrides

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "validation" / "cases" / "derive_srm" / "cases.json"
DOC = json.loads(CASES.read_text())
PARAMS = DOC["cases"][0]["parameters"]
YEAR = 365 * 86400


def _params(**changes: dict) -> object:
    p = copy.deepcopy(PARAMS)
    for group, kv in changes.items():
        p[group].update(kv)
    return params_from_dict(p)


def _one_option(strike: float, is_call: bool, amount: float, *, spot: float = 1500.0, fwd: float = 1500.0,
                seconds: float = 864000, vol: float = 0.8, stable: float = 1.0, **conf: float) -> SRMPortfolio:
    e = SRMExpiry(seconds, fwd, (SRMOption(strike, is_call, amount, vol),), conf.get("fwd_conf", 1.0),
                  conf.get("vol_conf", 1.0))
    return SRMPortfolio(0.0, (SRMMarket("ETH", spot, conf.get("spot", 1.0), (e,)),), stable)


def test_suite_is_registered_and_passes_every_published_case() -> None:
    assert SUITES["derive-srm"] == ("derive_srm", "derive_srm")
    res = run_suite("derive-srm", CASES.parent)
    assert (res.n_passed, res.n_failed, res.n_not_checked) == (24, 0, 0)


def test_short_call_isolated_margin_follows_the_contract_formula() -> None:
    spot, k, t, vol = 1500.0, 1600.0, 864000, 0.8
    mark = float(black76_price(True, spot, k, t / YEAR, vol))
    res = derive_srm_margin(_one_option(k, True, -2.0, vol=vol, seconds=t), _params())
    otm = (k - spot) / spot
    im_iso = -2 * spot * max(0.1, 0.15 - otm) - 2 * mark
    mm_iso = -2 * mark - 0.075 * spot * 2
    bounded_mm = -1.1 * spot * 2  # max loss 0 at 0 and at K, plus the unpaired calls on the forward
    assert res.mm == pytest.approx(max(mm_iso, bounded_mm), rel=1e-12)
    assert res.im == pytest.approx(max(im_iso, -1.2 * spot * 2), rel=1e-12)
    assert res.mtm == pytest.approx(-2 * mark, rel=1e-12)


def test_short_put_im_takes_the_offset_scale_times_mm_when_smaller() -> None:
    # deep ITM put: IM = min(spot term + mtm, 1.05 x MM)
    res = derive_srm_margin(_one_option(4000.0, False, -1.0, vol=0.3), _params())
    mark = float(black76_price(False, 1500.0, 4000.0, 864000 / YEAR, 0.3))
    mm = min(-0.075 * 1500, -0.075 * mark) - mark
    assert res.mm == pytest.approx(max(mm, -4000.0), rel=1e-12)
    # ITM put: OTM ratio 0, so the spot share is maxSpotReq; the 1.05 x MM term is the smaller one here
    assert 1.05 * mm < -0.15 * 1500 - mark
    assert res.im == pytest.approx(max(min(-0.15 * 1500 - mark, 1.05 * mm), -4000.0), rel=1e-12)


def test_max_loss_bounds_a_call_spread() -> None:
    e = SRMExpiry(864000, 1500.0, (SRMOption(1400, True, -1.0, 0.8), SRMOption(1500, True, 1.0, 0.8)))
    res = derive_srm_margin(SRMPortfolio(0.0, (SRMMarket("ETH", 1500.0, 1.0, (e,)),)), _params())
    assert res.mm == pytest.approx(-100.0) and res.im == pytest.approx(-100.0)
    assert res.markets[0].isolated_mm < -100.0


def test_confidence_just_below_the_threshold_triggers_the_contingency_exactly() -> None:
    at = derive_srm_margin(_one_option(1500, True, -1.0, vol=0.5, fwd_conf=Fraction(2, 5)), _params())
    below = derive_srm_margin(_one_option(1500, True, -1.0, vol=0.5, fwd_conf=Fraction(4 * 10**17 - 1, 10**18)),
                              _params())
    assert at.markets[0].oracle_im == 0.0
    assert below.markets[0].oracle_im == pytest.approx(-(0.6 * 0.4 * 1500), rel=1e-12)
    assert below.mm == at.mm  # contingencies are IM only


def test_depeg_is_im_only_and_scales_short_options() -> None:
    res = derive_srm_margin(_one_option(1500, True, -3.0, stable=0.97), _params())
    assert res.markets[0].depeg_im == pytest.approx(-(0.98 - 0.97) * 1.2 * 1500 * 3, rel=1e-12)
    same = derive_srm_margin(_one_option(1500, True, -3.0, stable=1.0), _params())
    assert res.mm == same.mm and res.im < same.im


def test_trunc_is_toward_zero_like_solidity() -> None:
    res = derive_srm_margin(SRMPortfolio(-802.7, ()), _params())
    assert (res.trunc_im, res.trunc_mm) == (-802, -802)


@pytest.mark.parametrize(("group", "key", "value"), [
    ("option", "unpairedIMScale", 3.0), ("option", "maxSpotReq", 1.2), ("option", "mmPutSpotReq", 1.0),
    ("depeg", "depegFactor", 3.0), ("oracle_contingency", "OCFactor", 1.0), ("base_asset_margin_factor",
                                                                              "marginFactor", 1.0)])
def test_contract_maxima_are_accepted(group: str, key: str, value: float) -> None:
    params_from_dict({**copy.deepcopy(PARAMS), group: {**PARAMS[group], key: value}})


@pytest.mark.parametrize(("group", "key", "value"), [
    ("option", "unpairedIMScale", 0.99), ("option", "maxSpotReq", 1.21), ("option", "mmCallSpotReq", 1.01),
    ("depeg", "depegFactor", 3.01), ("perp_margin", "mmPerpReq", 0.0), ("perp_margin", "mmPerpReq", 0.07)])
def test_values_the_contract_reverts_on_are_refused(group: str, key: str, value: float) -> None:
    with pytest.raises(InputError, match="contract"):
        params_from_dict({**copy.deepcopy(PARAMS), group: {**PARAMS[group], key: value}})


def test_unknown_parameter_and_scenario_keys_are_errors_naming_them() -> None:
    with pytest.raises(InputError, match="maxSpotReqq"):
        params_from_dict({**PARAMS, "option": {**PARAMS["option"], "maxSpotReqq": 0.1}})
    case = copy.deepcopy(DOC["cases"][0])
    case["scenario"]["OptionVolz"] = [1.0]
    res = run_case(DOC, case)
    assert res.status == "failed" and "OptionVolz" in (res.error or "")
    case = copy.deepcopy(DOC["cases"][0])
    case["expected"]["components"]["ETHOptionXX"] = 1.0
    res = run_case(DOC, case)
    assert "ETHOptionXX" in (res.error or "")


def test_overrides_are_interpreted_exactly_and_unknown_statements_refused() -> None:
    feeds = Feeds.from_fixture(DOC["portfolio_fixture"])
    apply_overrides(feeds, ['uint64 expiry = uint64(dateToExpiry["20230118"]);',
                            "ethFeed.setForwardPrice(expiry, ethDefaultPrice + 4.75e18, 0.4e18 - 1);",
                            "stableFeed.setSpot(0.97e18, 1e18); // comment"])
    assert feeds.forward("eth", "20230118") == (Fraction(200475, 100), Fraction(4 * 10**17 - 1, 10**18))
    assert feeds.stable == (Fraction(97, 100), Fraction(1))
    apply_overrides(feeds, ['btcFeed.setForwardPricePortions(dateToExpiry["20230104"], 10e18, 28000e18, 0.5e18);'])
    assert feeds.forward("btc", "20230104") == (Fraction(28010), Fraction(1, 2))
    for bad in ["manager.setDepegParameters(x);", "ethFeed.setSpot(1e18);", "ethFeed.setVol(42, 1e18, 1e18, 1e18);",
                'ethFeed.setForwardPrice(dateToExpiry["20990101"], 1e18, 1e18);']:
        with pytest.raises(CaseFormatError, match="harness statement"):
            apply_overrides(Feeds.from_fixture(DOC["portfolio_fixture"]), [bad])


def test_portfolio_case_with_an_uninterpretable_override_fails_with_the_statement() -> None:
    case = copy.deepcopy(next(c for c in DOC["cases"] if c.get("harness_overrides_solidity")))
    case["harness_overrides_solidity"].append("vm.warp(block.timestamp + 1 days);")
    res = run_case(DOC, case)
    assert res.status == "failed" and "vm.warp" in (res.error or "")


def test_shipped_model_loads_and_schema_uses_contract_bounds(tmp_path: Path) -> None:
    m = load_model("derive-srm")
    assert m.params.default.option.unpaired_im_scale == 1.2
    text = (ROOT / "models" / "derive-srm.toml").read_text()
    ok = tmp_path / "ok.toml"
    ok.write_text(text.replace("unpairedIMScale = 1.2", "unpairedIMScale = 3.0"))
    assert load_model(ok).params.default.option.unpaired_im_scale == 3.0
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("unpairedIMScale = 1.2", "unpairedIMScale = 0.5"))
    with pytest.raises(ModelError, match="unpairedIMScale"):
        load_model(bad)
