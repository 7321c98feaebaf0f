"""Issue 12 item 8: no silent zero collateral, --move moves the distance table, no silent liquidity default."""

from __future__ import annotations

import json

import numpy as np
import pytest

from greeksmargin.cli import main
from greeksmargin.datasets import example_paths, load_example_book
from greeksmargin.errors import InputError
from greeksmargin.solvency.assess import assess_solvency, simple_scan_margin
from greeksmargin.solvency.cascade import DEFAULT_LIQUIDITY, _liquidity_vector, run_cascade

P = example_paths()
ARGS = [str(P["positions"]), str(P["market"])]


@pytest.fixture(scope="module")
def book():
    return load_example_book()


# ------------------------------------------------------------------------------------------ collateral
@pytest.mark.parametrize("command", [["solvency", "--distance", "no"], ["cascade", "--shock", "-0.1"],
                                     ["liquidate", "--account", "MIXED"]])
def test_missing_collateral_is_an_error_naming_the_flag(command, capsys):
    assert main([command[0], *ARGS, *command[1:]]) == 2
    err = capsys.readouterr().err
    assert "--collateral" in err and "--no-collateral" in err


def test_no_collateral_is_an_explicit_visible_choice(tmp_path, capsys):
    assert main(["solvency", *ARGS, "--no-collateral", "--distance", "no"]) == 0
    assert "no collateral given (--no-collateral): equity = mark-to-market" in capsys.readouterr().out
    out = tmp_path / "s.json"
    assert main(["solvency", *ARGS, "--no-collateral", "--distance", "no", "--format", "json", "--out",
                 str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["collateral"] is None and any("no collateral" in n for n in doc["notes"])
    assert all(r["collateral"] == 0 for r in doc["accounts"])
    assert main(["solvency", *ARGS, "--no-collateral", "--collateral", str(P["collateral"])]) == 2


def test_api_without_collateral_needs_the_explicit_choice(book):
    with pytest.raises(InputError, match="no_collateral=True"):
        assess_solvency(book.positions, book.market, None, margin_fn=simple_scan_margin())
    st = assess_solvency(book.positions, book.market, None, margin_fn=simple_scan_margin(), no_collateral=True)
    assert (st.accounts["collateral"] == 0).all()


# ---------------------------------------------------------------------------------------------- --move
def test_move_moves_the_distance_table(book):
    fn = simple_scan_margin()
    today = assess_solvency(book.positions, book.market, book.collateral, margin_fn=fn, distance=True)
    moved = assess_solvency(book.positions, book.market, book.collateral, margin_fn=fn, distance=True,
                            moves={"BTC": -0.1})
    key = ["account", "underlying"]
    t = today.distance.set_index(key)
    m = moved.distance.set_index(key)
    row = ("BTC-COVCALL", "BTC")
    assert t.loc[row, "method"] == "root" and m.loc[row, "method"] == "root"
    # the distance is measured from the moved market: a different move, the same liquidation price
    assert m.loc[row, "move"] != pytest.approx(t.loc[row, "move"], rel=1e-3)
    assert m.loc[row, "price"] == pytest.approx(t.loc[row, "price"], rel=1e-6)
    assert (1 - 0.1) * (1 + m.loc[row, "move"]) == pytest.approx(1 + t.loc[row, "move"], rel=1e-6)


def test_cli_move_changes_the_distance_rows(tmp_path):
    outs = []
    for extra in ([], ["--move", "BTC=-0.1"]):
        out = tmp_path / f"d{len(extra)}.json"
        assert main(["solvency", *ARGS, "--collateral", str(P["collateral"]), "--model", "greeks-default",
                     "--format", "json", "--out", str(out), *extra]) == 0
        outs.append(json.loads(out.read_text()))
    pick = [next(r for r in d["distance"] if r["account"] == "BTC-COVCALL" and r["underlying"] == "BTC")
            for d in outs]
    assert pick[0]["move"] != pytest.approx(pick[1]["move"], rel=1e-3)
    assert pick[1]["price"] == pytest.approx(pick[0]["price"], rel=1e-6)
    assert outs[1]["moves"] == {"BTC": -0.1}


# -------------------------------------------------------------------------------------------- liquidity
def test_liquidity_mapping_missing_a_held_underlying_is_an_error(book):
    with pytest.raises(InputError, match="SPX"):
        run_cascade(book.positions, book.market, book.collateral, margin_fn=simple_scan_margin(), shock=-0.2,
                    liquidity={"BTC": 2e9, "ETH": 1e9})
    res = run_cascade(book.positions, book.market, book.collateral, margin_fn=simple_scan_margin(), shock=-0.2,
                      liquidity={"BTC": 2e9, "ETH": 1e9, "SPX": 3e10})
    assert res.liquidity == {"BTC": 2e9, "ETH": 1e9, "SPX": 3e10}
    assert res.summary()["liquidity_SPX"] == 3e10


def test_default_liquidity_is_explicit_per_underlying(book):
    assert "*" not in DEFAULT_LIQUIDITY
    res = run_cascade(book.positions, book.market, book.collateral, margin_fn=simple_scan_margin(), shock=-0.2)
    assert res.liquidity == {u: DEFAULT_LIQUIDITY[u] for u in ("BTC", "ETH", "SPX")}
    with pytest.raises(InputError, match="XYZ"):  # held, without a default: named, no fallback
        _liquidity_vector(["BTC", "XYZ"], None, {"BTC", "XYZ"})
    assert np.isinf(_liquidity_vector(["BTC", "XYZ"], None, {"BTC"})[1])  # not held: never trades

def test_cli_cascade_liquidity_is_stated_and_complete(capsys):
    base = ["cascade", *ARGS, "--collateral", str(P["collateral"]), "--shock", "-0.2", "--mode", "cross"]
    assert main([*base, "--liquidity", "BTC=2e9,ETH=1e9"]) == 2
    assert "SPX" in capsys.readouterr().err
    assert main([*base, "--liquidity", "BTC=2e9,ETH=1e9,SPX=2e10"]) == 0
    out = capsys.readouterr().out
    assert ("liquidity L (USD notional; a net flow of L moves the price by at most 100%): "
            "BTC=2,000,000,000, ETH=1,000,000,000, SPX=20,000,000,000") in out
    assert main([*base, "--liquidity", "BTC2e9"]) == 2
