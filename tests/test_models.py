import re
from pathlib import Path

import pytest
from margin_fixtures import market, sample_book

import greeksmargin as gm
from greeksmargin.engine.models import RuleSet, list_models, load_model, models_dir
from greeksmargin.errors import ModelError

SHIPPED = models_dir() / "greeks-default.toml"


def _variant(tmp_path: Path, old: str, new: str, name: str = "bad.toml") -> Path:
    text = SHIPPED.read_text()
    assert old in text
    p = tmp_path / name
    p.write_text(text.replace(old, new, 1))
    return p


@pytest.mark.parametrize("name", ["greeks-default", "deribit-sm", "tims-pm"])
def test_shipped_component_models_load_with_meta(name):
    m = load_model(name)
    assert m.runnable and isinstance(m.params, RuleSet)
    for key in ("name", "methodology", "version", "description", "source", "effective_date"):
        assert m.meta[key]
    assert m.name == name


def test_house_model_states_its_calibration_provenance():
    m = load_model("greeks-default")
    runs = m.meta["calibration"]
    assert runs, "the shipped house model must come from a calibration run"
    for run in runs.values():
        for key in ("dataset", "start", "end", "confidence", "mpor_days", "method", "code_version", "command"):
            assert run[key] not in ("", None), key
    assert any("not calibrated" in note for note in m.meta["notes"])  # what stays policy says so
    assert m.params.grid.n_scenarios >= 27
    assert m.params.mm_factor == pytest.approx(0.8)


def test_list_models_lists_every_file_with_methodology():
    df = list_models()
    names = set(df["name"])
    assert {"greeks-default", "deribit-sm", "tims-pm"} <= names
    assert len(df) == len(list(models_dir().glob("*.toml")))
    assert (df["methodology"] != "?").all()
    assert df.loc[df["name"] == "greeks-default", "runnable"].item()


def test_typo_in_a_key_is_rejected_naming_key_and_file(tmp_path):
    p = _variant(tmp_path, "[grid]\nrange_down = ", "[grid]\nrnage_down = ")
    with pytest.raises(ModelError, match=r"bad\.toml.*key 'grid\.rnage_down'.*unknown key") as exc:
        load_model(p)
    assert exc.value.key == "grid.rnage_down" and exc.value.file.endswith("bad.toml")


def test_wrong_type_and_missing_parameter_are_rejected(tmp_path):
    p = _variant(tmp_path, "gain_offset = 1.0", 'gain_offset = "one"', "t1.toml")
    with pytest.raises(ModelError, match=r"key 'components\.scan\.gain_offset'.*wrong type"):
        load_model(p)
    som = "[components.short_option_minimum]\n"
    p = _variant(tmp_path, som + "rate = 0.0\n", som, "t2.toml")
    with pytest.raises(ModelError, match=r"key 'components\.short_option_minimum\.rate'.*missing parameter"):
        load_model(p)
    p = _variant(tmp_path, "mm_factor = 0.8", 'mm = "scan"\nmm_factor = 0.8', "t3.toml")
    with pytest.raises(ModelError, match="exactly one"):
        load_model(p)


def test_unknown_component_is_rejected(tmp_path):
    p = _variant(tmp_path, "[components.long_premium_cap]", "[components.liquidity_charge]", "t4.toml")
    with pytest.raises(ModelError, match=r"key 'components\.liquidity_charge'.*unknown component 'liquidity_charge'"):
        load_model(p)
    p = _variant(tmp_path, "im = \"min(", "im = \"concentration + min(", "t5.toml")
    with pytest.raises(ModelError, match=r"key 'combine\.im'.*unknown component\(s\) concentration"):
        load_model(p)


def test_unknown_model_name_and_env_override(tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="unknown model 'no-such-model'"):
        load_model("no-such-model")
    (tmp_path / "mine.toml").write_text(SHIPPED.read_text().replace('name = "greeks-default"', 'name = "mine"'))
    monkeypatch.setenv("GREEKSMARGIN_MODELS", str(tmp_path))
    assert list(list_models()["name"]) == ["mine"]
    assert load_model("mine").name == "mine"


def test_every_shipped_model_runs_on_a_book_and_others_are_refused(monkeypatch):
    import greeksmargin.engine.adapter_dispatch as methodologies
    import greeksmargin.engine.models as models_module

    df = list_models()
    assert df["runnable"].all()  # natively or through a book adapter
    # a methodology with neither an engine rule set nor a book adapter is refused with its name
    monkeypatch.delitem(methodologies.DISPATCH, "span")
    monkeypatch.setattr(models_module, "BOOK_ADAPTED", models_module.BOOK_ADAPTED - {"span"})
    with pytest.raises(ModelError, match=re.escape("methodology 'span'")):
        gm.compute_margin(sample_book(), market(), "span")
