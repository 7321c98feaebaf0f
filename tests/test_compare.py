"""Comparison tools: model vs exchange margin, models side by side, their reports and CLI commands."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greeksmargin import io
from greeksmargin.cli import compare as cli_compare
from greeksmargin.datasets import DATA_DIR, example_paths, load_example_book
from greeksmargin.engine.compare import (
    DEFAULT_THRESHOLD,
    compare_with_exchange,
    component_drivers,
    normalize_exchange_margin,
    side_by_side,
)
from greeksmargin.errors import InputError
from greeksmargin.reports.compare import compare_report, side_by_side_report

EXAMPLE = DATA_DIR / "example_exchange_margin.csv"


def _accounts():
    return pd.DataFrame({
        "account": ["A", "B", "C", "D", "E", "G"],
        "im": [110.0, 50.0, 0.0, 5.0, 10.0, np.nan],
        "mm": [88.0, 40.0, 0.0, 4.0, 8.0, np.nan],
        "currency": ["USD"] * 6,
        "error": [None, None, None, None, None, "no vol"],
    })


def _exchange():
    return pd.DataFrame({
        "account": ["A", "B", "C", "D", "F", "G"],
        "exchange_im": [100.0, 100.0, 0.0, 0.0, 7.0, 3.0],
        "exchange_mm": [80.0, 80.0, 0.0, 0.0, np.nan, 2.0],
        "currency": ["USD"] * 6,
    })


def _components():
    return pd.DataFrame({
        "account": ["A", "A", "A", "A", "B"],
        "underlying": ["X", "Y", "X", "ALL", "X"],
        "rule": ["scan", "sensitivity", "contingency", "aggregation", "scan"],
        "component": ["scan", "vega", "roll", "im", "scan"],
        "amount": [70.0, -90.0, 5.0, 110.0, 50.0],
        "currency": ["USD"] * 5,
    })


# --------------------------------------------------------------------------------- compare (pure)
def test_ratios_outliers_and_status_on_a_hand_made_frame():
    acc = _accounts()
    acc.attrs["components"] = _components()
    t = compare_with_exchange(acc, _exchange()).set_index("account")
    assert t.loc["A", "im_ratio"] == pytest.approx(1.1)
    assert t.loc["A", "mm_ratio"] == pytest.approx(1.1)
    assert t.loc["A", "im_log_ratio"] == pytest.approx(math.log(1.1))
    assert t.loc["A", "im_diff"] == pytest.approx(10.0)
    assert not t.loc["A", "outlier"]
    assert t.loc["B", "im_ratio"] == pytest.approx(0.5) and t.loc["B", "outlier"]
    assert t.loc["C", "im_ratio"] == 1.0 and not t.loc["C", "outlier"]  # both zero
    assert t.loc["D", "im_ratio"] == math.inf and t.loc["D", "outlier"]
    assert t.loc["E", "status"] == "not in exchange file" and math.isnan(t.loc["E", "im_ratio"])
    assert t.loc["F", "status"] == "not in model" and not t.loc["F", "outlier"]
    assert t.loc["G", "status"].startswith("model error: no vol")
    # drivers: largest |amount| first, totals left out
    assert t.loc["A", "drivers"].startswith("vega [Y] -90")
    assert "im [ALL]" not in t.loc["A", "drivers"]
    # sorted by |log ratio|, largest first
    assert list(t.index[:2]) == ["D", "B"]


def test_threshold_is_a_parameter():
    t = compare_with_exchange(_accounts(), _exchange(), threshold=0.05).set_index("account")
    assert t.loc["A", "outlier"]  # ln 1.1 = 0.095 > 0.05
    t = compare_with_exchange(_accounts(), _exchange(), threshold=1.0).set_index("account")
    assert not t.loc["B", "outlier"]  # ln 2 = 0.69 < 1
    with pytest.raises(InputError, match="threshold"):
        compare_with_exchange(_accounts(), _exchange(), threshold=0.0)


def test_mm_alone_can_make_an_outlier():
    acc = pd.DataFrame({"account": ["A"], "im": [100.0], "mm": [200.0], "currency": ["USD"]})
    ex = pd.DataFrame({"account": ["A"], "exchange_im": [100.0], "exchange_mm": [80.0]})
    t = compare_with_exchange(acc, ex)
    assert t.loc[0, "im_ratio"] == 1.0 and t.loc[0, "outlier"]


def test_currency_mismatch_and_fx_conversion():
    acc = pd.DataFrame({"account": ["A"], "im": [2.0], "mm": [1.6], "currency": ["BTC"]})
    ex = pd.DataFrame({"account": ["A"], "exchange_im": [200_000.0], "exchange_mm": [160_000.0],
                       "currency": ["USD"]})
    t = compare_with_exchange(acc, ex)
    assert t.loc[0, "status"] == "currency mismatch" and math.isnan(t.loc[0, "im_ratio"])
    t = compare_with_exchange(acc, ex, fx_to_usd={"BTC": 100_000.0, "USD": 1.0})
    assert t.loc[0, "status"] == "ok"
    assert t.loc[0, "exchange_im"] == pytest.approx(2.0)
    assert t.loc[0, "im_ratio"] == pytest.approx(1.0)


@settings(max_examples=40, deadline=None)
@given(model=st.floats(1e-3, 1e9), exch=st.floats(1e-3, 1e9), k=st.floats(1e-3, 1e3))
def test_ratio_properties(model, exch, k):
    acc = pd.DataFrame({"account": ["A"], "im": [model], "mm": [model], "currency": ["USD"]})
    ex = pd.DataFrame({"account": ["A"], "exchange_im": [exch], "exchange_mm": [exch]})
    t = compare_with_exchange(acc, ex)
    assert t.loc[0, "im_ratio"] * exch == pytest.approx(model, rel=1e-12)
    assert t.loc[0, "outlier"] == (abs(math.log(model / exch)) > DEFAULT_THRESHOLD)
    acc2 = acc.assign(im=model * k, mm=model * k)
    ex2 = ex.assign(exchange_im=exch * k, exchange_mm=exch * k)
    assert compare_with_exchange(acc2, ex2).loc[0, "im_ratio"] == pytest.approx(t.loc[0, "im_ratio"], rel=1e-9)


def test_component_drivers():
    d = component_drivers(_components(), "A", n=2)
    assert list(d["component"]) == ["vega", "scan"]
    assert component_drivers(_components(), "Z").empty


def test_normalize_exchange_margin_errors_name_the_column():
    with pytest.raises(InputError, match="exchange_im"):
        normalize_exchange_margin(pd.DataFrame({"account": ["A"], "mm": [1.0]}))
    with pytest.raises(InputError, match="exchange_im"):
        normalize_exchange_margin(pd.DataFrame({"account": ["A"], "exchange_im": [-1.0]}))
    with pytest.raises(InputError, match="listed twice"):
        normalize_exchange_margin(pd.DataFrame({"account": ["A", "A"], "exchange_im": [1.0, 2.0]}))
    d = normalize_exchange_margin(pd.DataFrame({"Account": ["A"], "IM": [1.0]}))
    assert list(d.columns) == ["account", "exchange_im", "exchange_mm", "currency"]
    assert math.isnan(d.loc[0, "exchange_mm"]) and d.loc[0, "currency"] == ""


def test_bundled_exchange_margin_matches_the_bundled_book():
    ex = normalize_exchange_margin(io.read_table(EXAMPLE), source=str(EXAMPLE))
    book = load_example_book()
    assert set(ex["account"]) == set(book.positions["account"])
    assert (ex["exchange_im"] > 0).all() and (ex["exchange_mm"] <= ex["exchange_im"]).all()
    assert set(ex["currency"]) <= {"USD", "BTC", "ETH"}


def test_compare_a_real_result_on_the_bundled_book():
    from greeksmargin.engine.margin import compute_margin

    book = load_example_book()
    fixed = Path(__file__).parent / "data" / "greeks-default-2026-11.toml"  # parameters of 2026-11 (fixed)
    res = compute_margin(book.positions, book.market, str(fixed))
    t = compare_with_exchange(res, io.read_table(EXAMPLE))
    assert (t["status"] == "ok").all()
    assert t["outlier"].any() and not t["outlier"].all()
    assert (t["drivers"] != "").all()
    html = compare_report(t, model_name="greeks-default")
    assert "<img" in html and "Outliers" in html


# ----------------------------------------------------------------------------------- side by side
@pytest.fixture(scope="module")
def sbs():
    book = load_example_book()
    return side_by_side(book.positions, book.market, ["greeks-default", "deribit-pm", "simm-2.6"])


def test_side_by_side_tables(sbs):
    im, saving = sbs
    assert list(im.columns) == ["account", "currency", "greeks-default", "deribit-pm", "simm-2.6"]
    assert len(im) == 7 and (im["currency"] == "USD").all()
    assert im["greeks-default"].notna().all()
    # deribit-pm cannot margin the linear-only accounts: NaN with a reason
    assert im.set_index("account").loc["SPX-DESK", "deribit-pm"] != im.set_index("account").loc["SPX-DESK",
                                                                                                 "deribit-pm"]
    assert "SPX-DESK" in im.attrs["errors"]["deribit-pm"]
    assert "outside the domain" in im.attrs["not_computed"]["deribit-pm"]["SPX-DESK"]
    s = saving.set_index("model")
    assert s.loc["deribit-pm", "not_computed"] == 3 and s.loc["deribit-pm", "failed"] == 0
    assert s.loc["greeks-default", "failed"] == 0 and s.loc["greeks-default", "not_computed"] == 0
    assert s.loc["deribit-pm", "status"] == "published"
    assert np.allclose(s["saving"], s["isolated_im"] - s["im"])
    assert (s["saving"] >= -1e-6).all()
    html = side_by_side_report(im, saving)
    assert html.count("<img") == 1 and "deribit-pm" in html


def test_side_by_side_account_currency():
    book = load_example_book()
    im, _ = side_by_side(book.positions, book.market, ["deribit-sm"], currency="account")
    cur = im.set_index("account")["currency"]
    assert cur["BTC-COVCALL"] == "BTC" and cur["SPX-DESK"] == "USD"
    with pytest.raises(InputError):
        side_by_side(book.positions, book.market, ["deribit-sm"], currency="EUR")


# ------------------------------------------------------------------------------------------- CLI
def _parser():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command")
    cli_compare.register(sub)
    return p


@pytest.mark.parametrize("fmt", ["csv", "json", "html"])
def test_cli_compare_writes(fmt, tmp_path):
    paths = example_paths()
    out = tmp_path / f"cmp.{fmt}"
    args = _parser().parse_args(["compare", str(paths["positions"]), str(paths["market"]), "--model", "deribit-pm",
                                 "--exchange-margin", str(EXAMPLE), "--format", fmt, "--out", str(out)])
    assert args.func(args) == 0
    text = out.read_text()
    if fmt == "csv":
        df = pd.read_csv(out)
        assert set(df["account"]) == set(normalize_exchange_margin(io.read_table(EXAMPLE))["account"])
        assert {"im_ratio", "outlier", "drivers"} <= set(df.columns)
    elif fmt == "json":
        doc = json.loads(text)
        assert doc["model"] == "deribit-pm" and len(doc["accounts"]) == 7
    else:
        assert text.startswith("<!DOCTYPE html>") and "<img" in text


def test_cli_compare_table_to_stdout(capsys):
    paths = example_paths()
    args = _parser().parse_args(["compare", str(paths["positions"]), str(paths["market"]), "--model", "simm-2.5",
                                 "--exchange-margin", str(EXAMPLE)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "SPX-DESK" in out and "outlier" in out


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_cli_sidebyside_writes(fmt, tmp_path):
    paths = example_paths()
    out = tmp_path / f"sbs.{fmt}"
    args = _parser().parse_args(["sidebyside", str(paths["positions"]), str(paths["market"]), "--models",
                                 "deribit-sm,span", "--format", fmt, "--out", str(out)])
    assert args.func(args) == 0
    if fmt == "csv":
        df = pd.read_csv(out)
        assert set(df["model"]) == {"deribit-sm", "span"} and len(df) == 14
    else:
        doc = json.loads(out.read_text())
        assert len(doc["im"]) == 7 and {r["model"] for r in doc["saving"]} == {"deribit-sm", "span"}


def test_cli_sidebyside_every_model_html(tmp_path):
    from greeksmargin.engine.dispatch import runnable_models

    paths = example_paths()
    out = tmp_path / "sbs.html"
    args = _parser().parse_args(["sidebyside", str(paths["positions"]), str(paths["market"]), "--format", "html",
                                 "--out", str(out)])
    assert args.func(args) == 0
    text = out.read_text()
    assert "<img" in text
    for m in runnable_models():
        assert m in text


def test_cli_main_exit_codes(tmp_path, capsys):
    import greeksmargin.cli as cli

    paths = example_paths()
    bad = tmp_path / "bad.csv"
    bad.write_text("account,im_usd\nMIXED,1\n")
    code = cli.main(["compare", str(paths["positions"]), str(paths["market"]), "--model", "deribit-sm",
                     "--exchange-margin", str(bad)])
    assert code == 2 and "exchange_im" in capsys.readouterr().err
    out = tmp_path / "ok.csv"
    code = cli.main(["compare", str(paths["positions"]), str(paths["market"]), "--model", "deribit-sm",
                     "--exchange-margin", str(EXAMPLE), "--format", "csv", "--out", str(out)])
    assert code == 0 and len(pd.read_csv(out)) == 7
