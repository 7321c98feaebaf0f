"""Case readers are honest both ways: a case the publisher accepts is run, an unknown key or form is an error.

Regressions of issue 19: Derive PM2 bounds are the contract's setter checks (PMRMLib_2 @ 7736900), a
perpetual-only Deribit PM case needs no timestamp, max_offsetable_pnl is used, SIMM product multipliers as an
object equal the list form, a blank CreditNonQ Label2 shares no group, unknown keys are errors.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from greeksmargin.engine.params_files import load_simm_params
from greeksmargin.errors import GreeksMarginError
from greeksmargin.methodologies.deribit_pm import DeribitPMParams, deribit_pm_margin
from greeksmargin.methodologies.simm import normalize_crif, simm_margin
from greeksmargin.validation import deribit_pm as vdpm
from greeksmargin.validation import derive_pm2 as vpm2
from greeksmargin.validation import simm as vsimm
from greeksmargin.validation.core import run_suite

CASES = Path(__file__).resolve().parents[1] / "validation" / "cases"
PM2 = json.loads((CASES / "derive_pm2" / "cases.json").read_text())
DPM = json.loads((CASES / "deribit_pm" / "cases.json").read_text())
SIMM_LIB = json.loads((CASES / "simm" / "simmlib_v2.5_10d.json").read_text())


#: a published case with short and long options (so that the vol and skew parameters matter)
PM2_OPTIONS = next(c for c in PM2 if len(c["portfolio"]["options"]) >= 3
                   and any(o["amount"] < 0 for o in c["portfolio"]["options"]))


def _pm2_with(tmp_path: Path, group: str, key: str, value: float) -> Path:
    case = copy.deepcopy(PM2_OPTIONS)
    case["parameters"][group][key] = value
    f = tmp_path / "case.json"
    f.write_text(json.dumps([case]))
    return f


# ------------------------------------------------------------------------------------------- Derive PM2
@pytest.mark.parametrize(("group", "key", "value"), [
    ("vol_shock", "volrangedown", 2.0),  # the exchange's formula floors max(0, 1 - range x move) on purpose
    ("vol_shock", "volrangeup", 10.0), ("vol_shock", "dte_floor", 0.0), ("vol_shock", "min_vol_eval_shocked", 20.0),
    ("margin", "mm_loss_factor", 10.0), ("margin", "im_loss_factor", 10.0),
    ("margin", "base_static_discount_neg", 3.9999), ("margin", "base_static_discount", 1.1),
    ("basis_contingency", "scenario_spot_up", 2.999999), ("basis_contingency", "basis_cont_add_factor", 19.99),
    ("other_contingency", "peg_loss_threshold", 100.0), ("other_contingency", "conf_margin", 20.0),
    ("other_contingency", "mm_perp_percent", 3.0), ("skew_shock", "min_k_star", 0.0),
    ("skew_shock", "vol_param_scale", -20.0), ("skew_shock", "linear_cbase", -10.0),
])
def test_derive_pm2_case_at_the_contract_bounds_runs(tmp_path: Path, group: str, key: str, value: float) -> None:
    res = run_suite("derive-pm2", _pm2_with(tmp_path, group, key, value))
    case = res.cases[0]
    assert case.error is None
    assert np.isfinite(case.computed["im"]) and np.isfinite(case.computed["mm"])


def test_derive_pm2_volrangedown_2_changes_the_vol_down_scenarios(tmp_path: Path) -> None:
    base = run_suite("derive-pm2", _pm2_with(tmp_path, "vol_shock", "volrangedown", 0.275)).cases[0]
    two = run_suite("derive-pm2", _pm2_with(tmp_path, "vol_shock", "volrangedown", 2.0)).cases[0]
    assert two.error is None
    assert two.detail["scenario_pnl"] != base.detail["scenario_pnl"]


@pytest.mark.parametrize(("group", "key", "value"), [
    ("vol_shock", "volrangedown", 10.5), ("margin", "mm_loss_factor", 0.05), ("margin", "im_loss_factor", 0.4),
    ("basis_contingency", "scenario_spot_up", 3.0), ("other_contingency", "peg_loss_threshold", 100.5),
    ("skew_shock", "min_k_star", -0.1),
])
def test_derive_pm2_values_the_contract_reverts_on_are_refused(tmp_path: Path, group: str, key: str,
                                                                value: float) -> None:
    with pytest.raises(GreeksMarginError, match=key):
        run_suite("derive-pm2", _pm2_with(tmp_path, group, key, value))


def test_derive_pm2_unknown_expected_key_is_an_error() -> None:
    case = copy.deepcopy(PM2[0])
    case["expected"]["worst_regular_los"] = 1.0
    res = vpm2.run_case(case)
    assert res.status == "failed" and "worst_regular_los" in (res.error or "")


# ------------------------------------------------------------------------------------------- Deribit PM
def _perp_only_case() -> dict:
    case = copy.deepcopy(DPM[0])
    case.pop("timestamp_ms")
    case["positions"] = [p for p in case["positions"] if p["kind"] == "perpetual"]
    case["expected"] = {"risk_matrix_margin": 0.0}
    return case


def test_deribit_pm_perpetual_only_case_without_timestamp_runs(tmp_path: Path) -> None:
    case = _perp_only_case()
    assert case["positions"]
    f = tmp_path / "c.json"
    f.write_text(json.dumps([case]))
    res = run_suite("deribit-pm", f).cases[0]
    with_ts = vdpm.run_case({**case, "timestamp_ms": DPM[0]["timestamp_ms"]})
    assert res.error is None
    assert res.computed["risk_matrix_margin"] == with_ts.computed["risk_matrix_margin"] > 0


def test_deribit_pm_future_without_timestamp_is_an_error_naming_it() -> None:
    case = copy.deepcopy(DPM[0])
    case.pop("timestamp_ms")
    res = vdpm.run_case(case)
    assert res.status == "failed" and "timestamp_ms" in (res.error or "")


def test_deribit_pm_max_offsetable_pnl_caps_the_offset_gains() -> None:
    case = DPM[0]
    raw = {**case["parameters"], "pnl_offset": 0.5}
    free = deribit_pm_margin(case["positions"], case["index_price"], DeribitPMParams.from_dict(raw),
                             timestamp_ms=case["timestamp_ms"])
    cap = 1e-4
    capped = deribit_pm_margin(case["positions"], case["index_price"],
                               DeribitPMParams.from_dict({**raw, "max_offsetable_pnl": cap}),
                               timestamp_ms=case["timestamp_ms"])
    a = np.asarray(free.summary()["aggregated_pnl_coin"], dtype=float)
    b = np.asarray(capped.summary()["aggregated_pnl_coin"], dtype=float)
    assert (a > cap).any()  # the case has gains above the cap
    np.testing.assert_allclose(b, np.where(a > 0, np.minimum(a, cap), a))


def test_deribit_pm_published_parameter_keys_are_known_and_unknown_ones_refused(tmp_path: Path) -> None:
    case = copy.deepcopy(DPM[0])
    case["parameters"].update({"max_offsetable_pnl": 0, "m_inc": 0.00005, "haircut": 0, "equity_side_impact": "both",
                               "correlation_set": False, "vol_scenarios_count": 3})
    f = tmp_path / "c.json"
    f.write_text(json.dumps([case]))
    assert run_suite("deribit-pm", f).cases[0].status == "passed"
    case["parameters"]["price_rnage"] = 0.16
    f.write_text(json.dumps([case]))
    with pytest.raises(GreeksMarginError, match="price_rnage"):
        run_suite("deribit-pm", f)
    assert "price_rnage" in (vdpm.run_case(case).error or "")  # also without the file schema


# ------------------------------------------------------------------------------------------------- SIMM
def _multiplier_case() -> dict:
    return copy.deepcopy(next(c for c in SIMM_LIB["cases"] if c.get("product_multipliers")))


def test_simm_product_multipliers_as_an_object_equal_the_list_form() -> None:
    case = _multiplier_case()
    listed = vsimm.run_case(case, SIMM_LIB["sensitivities"])
    as_object = {**case, "product_multipliers": {m["product_class"]: m["multiplier"]
                                                 for m in case["product_multipliers"]}}
    obj = vsimm.run_case(as_object, SIMM_LIB["sensitivities"])
    plain = vsimm.run_case({k: v for k, v in case.items() if k != "product_multipliers"}, SIMM_LIB["sensitivities"])
    assert listed.status == "passed" and obj.status == "passed"
    assert obj.computed == listed.computed != plain.computed


@pytest.mark.parametrize("change", [{"product_multiplier": []}, {"product_multipliers": 1.2},
                                    {"product_multipliers": [{"product_class": "Credit", "multiplier": 1.1, "x": 1}]},
                                    {"addon_notionals": [{"product": "A"}]}])
def test_simm_unknown_case_key_or_form_is_an_error_naming_it(change: dict) -> None:
    case = {**_multiplier_case(), **change}
    res = vsimm.run_case(case, SIMM_LIB["sensitivities"])
    key = next(iter(change))
    assert res.status == "failed" and key in (res.error or "")


def test_simm_unknown_crif_field_of_a_sensitivity_is_an_error_naming_it() -> None:
    case = _multiplier_case()
    sens = copy.deepcopy(SIMM_LIB["sensitivities"])
    name = case["sensitivities"][0]
    sens[name]["lable2"] = sens[name].pop("label2", "")
    res = vsimm.run_case(case, sens)
    assert res.status == "failed" and "lable2" in (res.error or "")


def _credit_nonq(label2: tuple[str, str]) -> float:
    rows = normalize_crif([
        {"ProductClass": "Credit", "RiskType": "Risk_CreditNonQ", "Qualifier": name, "Bucket": "1", "Label1": "5y",
         "Label2": lab, "AmountUSD": amt}
        for name, lab, amt in (("NAME-A", label2[0], 1e6), ("NAME-B", label2[1], -1e6))])
    return simm_margin(rows, load_simm_params("2.5")).total


def test_simm_credit_nonq_blank_label2_pair_uses_the_different_name_correlation() -> None:
    blank = _credit_nonq(("", ""))
    different = _credit_nonq(("GROUP-A", "GROUP-B"))
    same = _credit_nonq(("GROUP-A", "GROUP-A"))
    assert blank == pytest.approx(different, rel=1e-12)
    assert same < 0.8 * blank  # a long/short pair in one group offsets far more
