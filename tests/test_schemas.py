"""Model-file schemas of the methodologies added beside the validation layer (cboe-strategy, all-class SIMM)."""

import tomllib
from pathlib import Path

import pytest

from greeksmargin.engine.model_schemas import check_model_file
from greeksmargin.errors import ModelError

MODELS = Path(__file__).resolve().parents[1] / "models"


def _raw(name):
    return tomllib.loads((MODELS / f"{name}.toml").read_text())


@pytest.mark.parametrize("name", ["cboe-strategy", "simm-2.5", "simm-2.6", "simm-2.7", "simm-2.8"])
def test_shipped_files_pass_their_schema(name):
    check_model_file(_raw(name), f"{name}.toml")


def test_strategy_rate_as_percentage_is_refused_with_the_key():
    raw = _raw("cboe-strategy")
    raw["parameters"]["rate_equity"] = 20
    with pytest.raises(ModelError, match=r"parameters\.rate_equity.*less than or equal to 1 \(got 20\)"):
        check_model_file(raw, "s.toml")


def test_strategy_typo_gets_the_nearest_name():
    raw = _raw("cboe-strategy")
    raw["parameters"]["rate_equty"] = raw["parameters"].pop("rate_equity")
    with pytest.raises(ModelError, match="unknown key 'rate_equty' \\(did you mean 'rate_equity'\\?\\)"):
        check_model_file(raw, "s.toml")


def test_strategy_unknown_index_type_is_refused():
    raw = _raw("cboe-strategy")
    raw["underlyings"]["index_type"]["SPX"] = "brod"
    with pytest.raises(ModelError, match="underlyings.index_type.SPX"):
        check_model_file(raw, "s.toml")


def test_simm_string_inside_a_correlation_matrix_names_the_entry():
    raw = _raw("simm-2.6")
    raw["credit_q"]["inter_bucket_correlation"][4][9] = "abc"
    with pytest.raises(ModelError, match=r"credit_q\.inter_bucket_correlation\[4\]\[9\].*'abc'"):
        check_model_file(raw, "s.toml")


def test_simm_misspelt_horizon_is_named_with_the_allowed_ones():
    raw = _raw("simm-2.6")
    tab = raw["commodity"]["vega"]["risk_weight"]
    tab["1dd"] = tab.pop("1d")
    with pytest.raises(ModelError, match="unknown horizon '1dd' \\(allowed: 10d, 1d\\); did you mean '1d'"):
        check_model_file(raw, "s.toml")


def test_simm_vega_weight_given_as_percentage_is_refused():
    raw = _raw("simm-2.6")
    raw["credit_nonq"]["vega"]["risk_weight"]["10d"] *= 100
    with pytest.raises(ModelError, match=r"credit_nonq\.vega\.risk_weight\.10d.*percentage"):
        check_model_file(raw, "s.toml")
