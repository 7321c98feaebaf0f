import re

from greeksmargin import io
from greeksmargin.calibration.backtest import run_backtest
from greeksmargin.calibration.history import load_history
from greeksmargin.calibration.model_file import build_model
from greeksmargin.calibration.shocks import calibrate
from greeksmargin.calibration.sweep import calibrated_model, margin_function
from greeksmargin.reports.calibration import backtest_report, calibration_report

IMG = re.compile(r'<img[^>]+src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}"')


def test_calibration_report_renders(tmp_path):
    h = load_history("sp500-arch")
    cal = calibrate(h, 0.99, 2, "fhs", stress=("2008-09-01", "2009-03-31"))
    out = io.write_text(calibration_report(h, cal, command="greeksmargin calibrate sp500"), tmp_path / "c.html")
    text = out.read_text()
    assert len(IMG.findall(text)) >= 2
    assert "price_shock_down" in text and "sp500" in text and "greeksmargin calibrate sp500" in text


def test_backtest_report_renders(tmp_path):
    h = load_history("btc-yahoo")
    raw, _ = calibrated_model(h)
    res = run_backtest(h, margin_function(build_model(raw), h, "stress-grid"), confidence=0.99, mpor=2, step=3)
    out = io.write_text(backtest_report(res, model_name="calibrated"), tmp_path / "b.html")
    text = out.read_text()
    assert len(IMG.findall(text)) >= 1
    assert "kupiec_p" in text and "christoffersen_p" in text and "long_straddle" in text
