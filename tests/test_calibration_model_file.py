import pytest

from greeksmargin.calibration.history import load_history
from greeksmargin.calibration.model_file import apply_calibration, write_model_file
from greeksmargin.calibration.shocks import calibrate
from greeksmargin.engine.models import load_model
from greeksmargin.errors import ModelError


@pytest.fixture(scope="module")
def cals():
    sp = load_history("sp500-arch")
    btc = load_history("btc-yahoo")
    return calibrate(sp, 0.99, 2, "hs"), calibrate(btc, 0.99, 2, "fhs", lam=0.97)


def test_calibrated_file_loads_and_records_provenance(tmp_path, cals):
    sp, btc = cals
    template = load_model("greeks-default")
    raw = apply_calibration(template.raw, btc, target="default", provenance={"code_version": "x", "command": "c1"})
    raw = apply_calibration(raw, sp, target="SPX", provenance={"code_version": "x", "command": "c2"})
    out = write_model_file(raw, tmp_path / "cal.toml", header="test")
    m = load_model(out)
    assert m.methodology == "greeks-stress" and m.runnable
    g = m.params.grid
    assert g.spot_move[~g.is_tail].min() == pytest.approx(-btc.price_shock_down, abs=1e-6)
    assert g.spot_move[~g.is_tail].max() == pytest.approx(btc.price_shock_up, abs=1e-6)
    spx = m.params.grid_for("SPX")
    assert spx.spot_move[~spx.is_tail].min() == pytest.approx(-sp.price_shock_down, abs=1e-6)
    assert spx.vol_rule.up == pytest.approx(sp.vol.up, abs=1e-6)  # VIX-based
    assert m.params.grid.vol_rule.up == template.params.grid.vol_rule.up  # BTC: proxy only, template kept
    assert m.params.components["delta"]["price_shock_by_underlying"]["SPX"] == pytest.approx(sp.price_shock, abs=1e-6)
    meta = m.meta["calibration"]
    assert set(meta) == {"default", "SPX"}
    rec = meta["SPX"]
    assert rec["dataset"] == "sp500" and rec["start"] == "1999-01-04" and rec["end"] == "2018-12-31"
    assert rec["confidence"] == 0.99 and rec["mpor_days"] == 2 and rec["method"] == "hs" and rec["command"] == "c2"
    assert meta["default"]["lambda"] == 0.97 and meta["default"]["vol_shocks_calibrated"] is False
    assert not any("placeholder" in n for n in m.meta["notes"])
    assert "test" in out.read_text().splitlines()[0]


def test_scale_halves_every_shock(cals):
    sp, _ = cals
    raw = load_model("greeks-default").raw
    a = apply_calibration(raw, sp, target="default")
    b = apply_calibration(raw, sp, target="default", scale=0.5)
    for key in ("range_down", "range_up"):
        assert b["grid"][key] == pytest.approx(0.5 * a["grid"][key], abs=2e-6)
    assert b["grid"]["vol_shock"]["up"] == pytest.approx(0.5 * a["grid"]["vol_shock"]["up"], abs=2e-6)
    assert b["components"]["delta"]["price_shock"] == pytest.approx(0.5 * a["components"]["delta"]["price_shock"],
                                                                   abs=2e-6)
    assert raw["grid"]["range_down"] == load_model("greeks-default").raw["grid"]["range_down"]  # template intact


def test_non_house_template_rejected(cals):
    with pytest.raises(ModelError, match="greeks-stress"):
        apply_calibration({"meta": {"methodology": "span"}}, cals[0])
