"""Property: what-if equals a full recompute of the book with the trades applied, under every shipped model.

Random trades on the bundled example book: resize or close a held position, add an option (a template
row of the book with another strike), a future or a perpetual, in a held account or a new one. The what-if
(:func:`greeksmargin.margin_change`) must give, for every touched account, the figures of a full recompute
of the whole book before and after the trades (``run_model``), to 1e-9 relative; an account the model does
not cover is ``not_computed`` on both sides. SIMM (about 1.3 s per account on this machine) runs on a
one-account book and one example per version; the house family on more examples (its incremental path is
the one most likely to drift from the full engine).
"""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from functools import cache

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import greeksmargin as gm
from greeksmargin.engine.dispatch import run_model
from greeksmargin.engine.models import load_model
from greeksmargin.engine.whatif import incremental_capable

BOOK = gm.datasets.load_example_book()
MK = BOOK.market
POS = BOOK.positions.drop(columns=["premium_currency"]).reset_index(drop=True)
MODELS = list(gm.list_models()["name"])
SIMM_ACCOUNTS = ["BTC-COVCALL"]


def _book(model: str) -> pd.DataFrame:
    if load_model(model).methodology == "simm":
        return POS[POS["account"].isin(SIMM_ACCOUNTS)].reset_index(drop=True)
    return POS


def _examples(model: str) -> int:
    m = load_model(model)
    if m.methodology == "simm":
        return 1
    return 6 if incremental_capable(m) else 2


@cache
def _before(model: str) -> pd.DataFrame:
    return run_model(_book(model), MK, model).accounts.set_index("account")


@st.composite
def trades(draw: st.DrawFn, book: pd.DataFrame) -> pd.DataFrame:
    accounts = sorted(book["account"].unique())
    n = draw(st.integers(1, 3))
    rows = []
    for _ in range(n):
        acc = draw(st.sampled_from(accounts + ["NEW-ACCOUNT"]))
        what = draw(st.sampled_from(["resize", "close", "option", "future", "perpetual"]))
        held = book[book["account"] == acc]
        if what in ("resize", "close") and len(held):
            r = held.iloc[draw(st.integers(0, len(held) - 1))].to_dict()
            r["quantity"] = -r["quantity"] if what == "close" else r["quantity"] * draw(
                st.sampled_from([-1.5, -0.5, 0.25, 1.0]))
        else:
            kind = "option" if what in ("resize", "close") else what
            pool = POS[POS["kind"] == kind]
            r = pool.iloc[draw(st.integers(0, len(pool) - 1))].to_dict()
            r["account"] = acc
            if kind == "option":
                r["strike"] = float(round(r["strike"] * draw(st.sampled_from([0.8, 0.95, 1.0, 1.1, 1.3]))))
                r["instrument"] = f"{r['instrument']}-K{r['strike']:g}"
            r["quantity"] = draw(st.sampled_from([-3.0, -1.0, 0.5, 2.0]))
        rows.append(r)
    return pd.DataFrame(rows, columns=POS.columns)


def _rel(x: float, y: float) -> float:
    return abs(x - y) / max(abs(y), 1e-12)


def _check(model: str, book: pd.DataFrame, tr: pd.DataFrame, ch: pd.DataFrame) -> None:
    after = run_model(pd.concat([book, tr], ignore_index=True), MK, model).accounts.set_index("account")
    before = _before(model)
    ch = ch.set_index("account")
    assert list(ch.index) == list(pd.unique(tr["account"]))
    for acc, r in ch.iterrows():
        a = after.loc[acc]
        b = before.loc[acc] if acc in before.index else None
        nc = str(a.get("status")) == "not_computed" or (b is not None and str(b.get("status")) == "not_computed")
        if nc:
            assert r["status"] == "not_computed" and isinstance(r["reason"], str) and r["reason"]
            assert np.isnan(r["im_after"]) and np.isnan(r["im_before"])
            continue
        assert r["status"] == "computed", (acc, r["reason"])
        assert r["currency"] == a["currency"]
        assert _rel(r["im_after"], float(a["im"])) < 1e-9, (model, acc, r["im_after"], a["im"])
        assert _rel(r["mm_after"], float(a["mm"])) < 1e-9, (model, acc, r["mm_after"], a["mm"])
        im0 = float(b["im"]) if b is not None else 0.0
        mm0 = float(b["mm"]) if b is not None else 0.0
        assert _rel(r["im_before"], im0) < 1e-9 and _rel(r["mm_before"], mm0) < 1e-9
        if r["currency_before"] == r["currency"]:
            assert abs(r["im_change"] - (float(a["im"]) - im0)) <= 1e-9 * max(abs(float(a["im"])), abs(im0), 1e-12)


@pytest.mark.parametrize("model", MODELS)
def test_whatif_equals_full_recompute(model):
    book = _book(model)

    @settings(max_examples=_examples(model), deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(tr=trades(book))
    def prop(tr: pd.DataFrame) -> None:
        _check(model, book, tr, gm.margin_change(book, MK, model, tr))

    prop()


def test_every_shipped_model_prices_the_example_book():
    """The premise of the property: every shipped model computes at least one account of the book."""
    for model in MODELS:
        acc = _before(model)
        assert (acc["status"].astype(str) == "computed").any(), model


def _cli(args: list[str]) -> tuple[int, str]:
    from greeksmargin.cli import main

    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = main(args)
    return rc, buf.getvalue()


@pytest.mark.parametrize("model", ["greeks-default", "deribit-pm", "span"])
def test_cli_whatif_equals_api(tmp_path, model):
    tr = pd.DataFrame([
        {**POS.iloc[0].to_dict(), "quantity": -POS.iloc[0]["quantity"] * 0.5},
        {**POS[POS["instrument"] == "BTC-PERPETUAL"].iloc[0].to_dict(), "account": "BTC-COVCALL", "quantity": 2.0},
    ])
    pos_f, tr_f = tmp_path / "pos.csv", tmp_path / "trades.csv"
    POS.to_csv(pos_f, index=False)
    tr.to_csv(tr_f, index=False)
    mk_f = gm.datasets.__path__[0] + "/data/example_market.json"
    rc, out = _cli(["whatif", str(pos_f), mk_f, "--trades", str(tr_f), "--model", model, "--format", "csv"])
    assert rc == 0
    got = pd.read_csv(io.StringIO(out)).set_index("account")
    want = gm.margin_change(POS, MK, model, tr).set_index("account")
    assert got.loc["BTC-COVCALL", "status"] == "computed"
    for c in ("im_before", "im_after", "mm_after", "im_change"):
        assert _rel(float(got.loc["BTC-COVCALL", c]), float(want.loc["BTC-COVCALL", c])) < 1e-9
    _check(model, POS, tr, want.reset_index())


def test_cli_whatif_unknown_model_exits_2(tmp_path, capsys):
    rc, _ = _cli(["whatif", str(tmp_path / "none.csv"), "m.json", "--trades", "t.csv", "--model", "no-such-model"])
    assert rc == 2
    assert "no-such-model" in capsys.readouterr().err

