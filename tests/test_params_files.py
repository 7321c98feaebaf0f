"""The engine's readers of methodology model files, and the methodologies' parsers that read no file."""

from __future__ import annotations

import tomllib

import pytest

from greeksmargin import io
from greeksmargin.engine import params_files as pf
from greeksmargin.errors import InputError, ModelError
from greeksmargin.methodologies.deribit_pm import currency_params
from greeksmargin.methodologies.derive_pm2_params import params_from_model as pm2_from_model
from greeksmargin.methodologies.derive_srm_model import params_from_model as srm_from_model
from greeksmargin.methodologies.simm import simm_margin
from greeksmargin.methodologies.simm_params import parse_simm_params
from greeksmargin.methodologies.span import product_params
from greeksmargin.methodologies.strategy import Leg, StrategyParams, Underlying, parse_strategy_params, strategy_margin

MODELS = io.shipped_folder("models")


def _doc(name: str) -> dict:
    return tomllib.loads((MODELS / f"{name}.toml").read_text())


def test_each_reader_equals_the_parser_on_the_files_document():
    f = MODELS / "simm-2.5.toml"
    assert pf.load_simm_params("2.5") == parse_simm_params(_doc("simm-2.5"), file=str(f))
    assert pf.load_simm_params("simm-2.5") == pf.load_simm_params(f)
    assert pf.load_strategy_params() == parse_strategy_params(_doc("cboe-strategy"))
    assert pf.load_deribit_pm_params("ETH") == currency_params(_doc("deribit-pm"), "ETH")
    assert pf.load_span_params("ES") == product_params(_doc("span"), "ES")
    assert pf.load_derive_pm2_params(MODELS / "derive-pm2.toml") == pm2_from_model(_doc("derive-pm2"))
    assert pf.load_derive_srm_params(MODELS / "derive-srm.toml") == srm_from_model(_doc("derive-srm"))


def test_readers_name_the_file_in_their_errors(tmp_path):
    bad = tmp_path / "pm.toml"
    bad.write_text("[btc]\nnot_a_parameter = 1\n")
    with pytest.raises(ModelError, match="pm.toml"):
        pf.load_deribit_pm_params("BTC", bad)
    with pytest.raises(ModelError, match="no parameter set for currency 'SOL'"):
        pf.load_deribit_pm_params("SOL")
    with pytest.raises(ModelError, match="unknown strategy-margin model 'nope'"):
        pf.load_strategy_params("nope")
    with pytest.raises(ModelError, match="unknown SIMM version '9.9'"):
        pf.load_simm_params("9.9")


def test_rule_code_refuses_a_name_or_path_instead_of_reading_it():
    row = {"ProductClass": "Equity", "RiskType": "Risk_Equity", "Qualifier": "X", "Bucket": "1", "Label1": "",
           "Label2": "", "AmountUSD": 1e6}
    with pytest.raises(InputError, match="load_simm_params"):
        simm_margin([row], "2.5")
    with pytest.raises(InputError, match="load_strategy_params"):
        parse_strategy_params("cboe-strategy")
    # a parsed document is accepted as it was before the readers moved
    assert simm_margin([row], _doc("simm-2.5")).total == simm_margin([row], pf.load_simm_params("2.5")).total


def test_strategy_default_parameters_are_the_shipped_model():
    # strategy_margin(params=None) uses StrategyParams(); its field defaults must be the shipped cboe-strategy file
    shipped = pf.load_strategy_params("cboe-strategy")
    assert StrategyParams() == shipped
    legs = [Leg.stock(100, 50), Leg.option("call", 55, 1, -1), Leg.option("put", 45, "0.5", -2)]
    und = Underlying.of(50)
    assert strategy_margin(legs, und).margin_requirement == strategy_margin(legs, und, shipped).margin_requirement
    assert strategy_margin(legs, und).margin_requirement > 0


def test_public_simm_entry_points_take_a_version_and_equal_the_rule_code():
    """``gm.simm_margin(crif, "2.5")`` (engine layer: resolves the version to the shipped file) equals the rule
    code on the loaded parameters; a different version gives a different total (the version is used)."""
    import greeksmargin as gm

    crif = [
        {"ProductClass": "Equity", "RiskType": "Risk_Equity", "Qualifier": "ISIN:US0378331005", "Bucket": "12",
         "Label1": "", "Label2": "spot", "Amount": 1_000_000.0, "AmountCurrency": "USD", "AmountUSD": 1_000_000.0},
        {"ProductClass": "Equity", "RiskType": "Risk_Equity", "Qualifier": "ISIN:US5949181045", "Bucket": "12",
         "Label1": "", "Label2": "spot", "Amount": -400_000.0, "AmountCurrency": "USD", "AmountUSD": -400_000.0},
    ]
    want = simm_margin(crif, pf.load_simm_params("2.5"), "10d")
    got = gm.simm_margin(crif, "2.5", "10d")
    assert got.total == pytest.approx(want.total, rel=1e-15) and got.total > 0
    assert gm.simm_margin(crif, pf.load_simm_params("2.5")).total == pytest.approx(want.total, rel=1e-15)
    assert gm.simm_margin(crif, "2.6").total != pytest.approx(want.total, rel=1e-9)
    assert list(gm.simm_by_portfolio(crif, "2.5", by=None).values())[0].total == pytest.approx(want.total, rel=1e-15)
    with pytest.raises(ModelError):
        gm.simm_margin(crif, "9.9")
