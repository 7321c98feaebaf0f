import pytest

from greeksmargin.cli import main
from greeksmargin.engine.models import load_model


def test_calibrate_writes_loadable_model_with_provenance(tmp_path, capsys):
    out = tmp_path / "house.toml"
    html = tmp_path / "cal.html"
    rc = main(["calibrate", "sp500", "--confidence", "0.99", "--mpor", "2", "--method", "fhs", "--lambda", "0.97",
               "--out", str(out), "--html", str(html)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "price shock down" in text and "FHS lambda=0.97" in text
    m = load_model(out)
    rec = m.meta["calibration"]["SPX"]
    assert m.name == "house" and rec["method"] == "fhs" and rec["lambda"] == 0.97
    assert rec["command"].startswith("greeksmargin ") and rec["code_version"].startswith("0.")
    assert "data:image/png;base64," in html.read_text()


def test_calibrate_reference_vega_log_returns_window(tmp_path, capsys):
    """The options reach the model file, the JSON and the report alike (window, return kind, vega reference)."""
    import json

    out, js, html = tmp_path / "ref.toml", tmp_path / "cal.json", tmp_path / "cal.html"
    rc = main(["calibrate", "sp500", "--start", "2014-01-03", "--end", "2016-12-30", "--kind", "log",
               "--vol-series", "index", "--joint-vol", "--vega-method", "reference", "--out", str(out),
               "--json", str(js), "--html", str(html)])
    assert rc == 0
    assert "vega charge shocks from the reference straddles" in capsys.readouterr().out
    rec = load_model(out).meta["calibration"]["SPX"]
    d = json.loads(js.read_text())
    assert rec["return_kind"] == d["return_kind"] == "log" and rec["start"] == d["start"] == "2014-01-03"
    assert rec["vega_shock_method"] == "reference"
    assert d["extra"]["vega_reference"]["down"] == rec["vega_shock_down"]
    assert "vega_reference.down" in html.read_text()


def test_backtest_cli_stress_grid(tmp_path, capsys):
    model = tmp_path / "m.toml"
    assert main(["calibrate", "sp500", "--out", str(model)]) == 0
    html = tmp_path / "bt.html"
    rc = main(["backtest", "sp500", "--model", str(model), "--margin", "stress-grid", "--step", "5",
               "--html", str(html), "--portfolios", "long_future,short_straddle"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "long_future" in text and "kupiec_p" in text and "c=0.99 MPOR 2" in text
    assert "data:image/png;base64," in html.read_text()


def test_sweep_cli_serial(capsys):
    rc = main(["sweep", "sp500", "--confidence", "0.99", "--mpor", "1,2", "--lambda", "0.94", "--serial",
               "--margin", "stress-grid", "--step", "10", "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "2 cells on serial" in out and "kupiec_p" in out


def test_sweep_cli_with_the_shipped_vol_settings(capsys):
    rc = main(["sweep", "sp500-arch", "--mpor", "2", "--method", "hs", "--vol-series", "filled", "--joint-vol",
               "--vega-method", "reference", "--serial", "--step", "10", "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    # the shipped model's SPX vega shocks (models/greeks-default.toml, same settings)
    assert "vega_shock_up" in out and "23.51%" in out and "15.44%" in out  # 0.2351 / 0.1544 as percent


def test_cli_errors(capsys):
    assert main(["calibrate", "/nonexistent/h.csv"]) == 2
    assert "file not found" in capsys.readouterr().err
    assert main(["sweep", "sp500", "--mpor", "1.5", "--serial"]) == 2
    assert main(["backtest", "sp500", "--portfolios", "nope"]) == 2
    with pytest.raises(SystemExit):
        main(["calibrate", "sp500", "--method", "garch"])
