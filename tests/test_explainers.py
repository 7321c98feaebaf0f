"""Explainers name positions by instrument; side-by-side totals say which accounts they cover."""

import numpy as np
import pandas as pd

from greeksmargin.cli import main
from greeksmargin.datasets import example_paths, load_example_book
from greeksmargin.engine.compare import side_by_side
from greeksmargin.engine.margin import compute_margin

BOOK = load_example_book()


def test_attribution_and_pnl_matrix_name_instruments():
    res = compute_margin(BOOK.positions, BOOK.market, "greeks-default")
    att = res.attribution()
    pos = BOOK.positions
    assert list(att["instrument"]) == list(pos.loc[att["position"], "instrument"].astype(str))
    acc = "BTC-COVCALL"
    pm = res.pnl_matrix(acc)
    held = pos.loc[pos["account"] == acc, "instrument"].astype(str)
    assert {c.split("#")[0] for c in pm.columns} == set(held)
    assert not any(isinstance(c, (int, np.integer)) for c in pm.columns)


def test_side_by_side_totals_over_the_accounts_every_model_priced():
    im, saving = side_by_side(BOOK.positions, BOOK.market, ["greeks-default", "deribit-pm"])
    common = saving.attrs["common_accounts"]
    per = {m: set(im.loc[im[m].notna(), "account"]) for m in ("greeks-default", "deribit-pm")}
    assert set(common) == per["greeks-default"] & per["deribit-pm"]
    assert 0 < len(common) < len(im)
    assert (saving["common_accounts"] == len(common)).all()
    # the like-for-like total of greeks-default is below its own total (it priced more accounts)
    g = saving.set_index("model").loc["greeks-default"]
    assert g["im_common"] < g["im"]
    expected = im.set_index("account").loc[common, "greeks-default"].sum()
    assert np.isclose(g["im_common"], expected)


def test_compare_says_the_bundled_exchange_file_is_illustrative(capsys):
    p = example_paths()
    sample = p["positions"].parent / "example_exchange_margin.csv"
    assert main(["compare", str(p["positions"]), str(p["market"]), "--model", "deribit-pm",
                 "--exchange-margin", str(sample)]) == 0
    assert "ILLUSTRATIVE" in capsys.readouterr().out
    assert pd.read_csv(sample).shape[0] > 0
