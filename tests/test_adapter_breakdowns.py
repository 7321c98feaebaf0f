"""attribution() and pnl_matrix() on every model's result: the methodology's own break-down, or a clear ModelError."""

from __future__ import annotations

import pandas as pd
import pytest

import greeksmargin as gm
from greeksmargin.engine.adapter_dispatch import NO_ATTRIBUTION, NO_PNL_MATRIX
from greeksmargin.engine.dispatch import run_model
from greeksmargin.errors import ModelError

BOOK = gm.datasets.load_example_book()
MK = BOOK.market
POS = BOOK.positions


def test_simm_euler_attribution_sums_to_the_im():
    sub = POS[POS["account"] == "BTC-COVCALL"].head(3)
    res = run_model(sub, MK, "simm-2.6")
    att = res.attribution()
    im = float(res.accounts["im"].iloc[0])
    assert list(att["position"]) == list(sub.index)
    assert (att["contribution"] > 0).all()  # three short calls: each adds margin
    assert att["contribution"].sum() == pytest.approx(im, rel=1e-6)  # Euler: SIMM homogeneous of degree 1 here
    assert att["residual"].iloc[0] == pytest.approx(im - att["contribution"].sum(), abs=1e-12 * im)
    # doubling one position moves the IM by about its contribution's share (first-order check of the derivative)
    big = sub.copy()
    big.loc[sub.index[0], "quantity"] *= 1.01
    im2 = float(run_model(big, MK, "simm-2.6").accounts["im"].iloc[0])
    assert (im2 - im) / 0.01 == pytest.approx(att["contribution"].iloc[0], rel=1e-2)


@pytest.mark.parametrize("model", ["span", "deribit-pm", "derive-pm2", "derive-srm", "cboe-strategy", "simm-2.8"])
def test_other_methodologies_say_why(model):
    res = run_model(POS[POS["account"].isin(["BTC-COVCALL", "SPX-NAKEDPUT"])], MK, model)
    meth = res.model.methodology.replace("_", "-")
    acc = str(res.accounts["account"].iloc[0])
    if meth not in ("deribit-pm", "span"):  # these two give their scenarios (tests below)
        with pytest.raises(ModelError, match="no P&L matrix") as e:
            res.pnl_matrix(acc)
        assert NO_PNL_MATRIX[meth] in str(e.value)
    if meth != "simm":
        with pytest.raises(ModelError, match="no attribution") as e:
            res.attribution()
        assert NO_ATTRIBUTION[meth] in str(e.value)


@pytest.mark.parametrize("model", ["greeks-default", "deribit-sm", "tims-pm"])
def test_house_family_defines_both(model):
    res = gm.compute_margin(POS, MK, model, errors="collect")
    att = res.attribution()
    acc = res.accounts[res.accounts["status"] == "computed"]
    tot = att.groupby("account")["contribution"].sum()
    for a, im in zip(acc["account"], acc["im"]):
        assert tot[a] == pytest.approx(im, rel=1e-9)
    a0 = str(acc["account"].iloc[0])
    if res.model.params.grid is None:  # deribit-sm: isolated formulas, no scenarios
        with pytest.raises(ModelError, match="no scenario grid"):
            res.pnl_matrix(a0)
        return
    mat = res.pnl_matrix(a0)
    assert isinstance(mat, pd.DataFrame) and mat.shape[1] == int((POS["account"] == a0).sum())


def test_deribit_pm_risk_matrix_gives_the_worst_case():
    res = run_model(POS, MK, "deribit-pm")
    acc = res.accounts.set_index("account")
    mat = res.pnl_matrix("BTC-COVCALL")
    held = POS[POS["account"] == "BTC-COVCALL"]
    assert sorted(mat.columns) == sorted(held["instrument"].unique())
    std = mat[~mat.index.str.contains("extended")]
    assert len(std) == 27  # 9 price moves x 3 vol states
    # the worst standard scenario of the summed P&L is the requirement's worst case (a loss: no gain offset)
    assert -std.sum(axis=1).min() == pytest.approx(float(acc.loc["BTC-COVCALL", "worst_case"]), rel=1e-9)
    with pytest.raises(ModelError, match="not computed"):
        res.pnl_matrix("SPX-DESK")


def test_span_scenario_matrix_gives_the_scan_risk():
    res = run_model(POS, MK, "span")
    mat = res.pnl_matrix("MIXED")
    held = POS[POS["account"] == "MIXED"]
    assert list(mat.columns) == list(held.index) and len(mat) == 16 * held["underlying"].nunique()
    comp = res.components
    scan = comp[(comp["account"] == "MIXED") & (comp["component"] == "scan_risk")].set_index("underlying")["amount"]
    for und, risk in scan.items():
        block = mat[mat.index.str.startswith(f"{und} ")]
        assert len(block) == 16
        assert (-block.sum(axis=1)).max() == pytest.approx(float(risk), rel=1e-9)
        # positions of other underlyings are 0 in this underlying's scenarios
        other = held.index[held["underlying"] != und]
        assert (block[other] == 0.0).all().all()
