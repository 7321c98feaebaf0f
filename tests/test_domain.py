"""Model domain and status (issue 12 item 3): out-of-domain accounts are not computed, never 0 or healthy."""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib

import numpy as np
import pandas as pd
import pytest

import greeksmargin as gm
from greeksmargin.cli import main
from greeksmargin.datasets import example_paths, load_example_book
from greeksmargin.engine.adapters import deribit_pm_accounts
from greeksmargin.engine.dispatch import run_model
from greeksmargin.engine.models import Domain, load_model, models_dir
from greeksmargin.errors import ModelError
from greeksmargin.solvency.assess import assess_solvency

OUTSIDE_PM = ("MIXED", "SPX-DESK", "SPX-NAKEDPUT")
INSIDE_PM = ("BTC-COVCALL", "BTC-SPREADS", "ETH-STRADDLE", "MM-CRYPTO")


@pytest.fixture(scope="module")
def book():
    return load_example_book()


@pytest.fixture(scope="module")
def pm(book):
    return run_model(book.positions, book.market, "deribit-pm")


# ------------------------------------------------------------------------------------------ model files
def test_every_shipped_model_declares_domain_and_status():
    files = sorted(models_dir().glob("*.toml"))
    assert len(files) >= 8
    for f in files:
        raw = tomllib.loads(f.read_text())
        assert "domain" in raw, f.name
        assert raw["meta"]["status"] in ("published", "illustrative"), f.name
        m = load_model(str(f))
        assert set(m.domain.kinds) <= {"option", "future", "perpetual", "spot"}
        assert set(m.domain.settlement) <= {"linear", "inverse"}
    pm_model = load_model("deribit-pm")
    assert pm_model.domain == Domain(("BTC", "ETH"), ("option", "future", "perpetual"), ("inverse",))
    assert load_model("greeks-default").domain.is_any and load_model("simm-2.6").domain.is_any
    assert load_model("span").status == "illustrative" and load_model("simm-2.5").status == "published"


@pytest.mark.parametrize(("table", "key"), [
    ('[domain]\nkinds = ["option", "swap"]\n', "domain.kinds"),
    ('[domain]\nsettlement = ["quanto"]\n', "domain.settlement"),
    ('[domain]\nunderlying = ["BTC"]\n', "domain.underlying"),
    ('[domain]\nunderlyings = []\n', "domain.underlyings"),
])
def test_bad_domain_values_are_errors_naming_the_key(tmp_path, table, key):
    text = (models_dir() / "deribit-sm.toml").read_text().split("\n# what the model can margin")[0]
    f = tmp_path / "m.toml"
    f.write_text(text + "\n" + table)
    with pytest.raises(ModelError) as exc:
        load_model(str(f))
    assert key in str(exc.value) and "m.toml" in str(exc.value)


def test_bad_status_is_an_error_and_absent_status_is_illustrative(tmp_path):
    text = (models_dir() / "deribit-sm.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('status = "illustrative"', 'status = "official"'))
    with pytest.raises(ModelError, match="meta.status"):
        load_model(str(bad))
    none = tmp_path / "none.toml"
    none.write_text(text.replace('status = "illustrative"\n', "").split("\n# what the model can margin")[0])
    m = load_model(str(none))
    assert m.status == "illustrative" and m.domain.is_any  # no [domain]: accepts everything


# ------------------------------------------------------------------------------------- the engine
def test_example_book_under_deribit_pm_spx_and_mixed_are_not_computed(pm, book):
    acc = pm.accounts.set_index("account")
    for a in OUTSIDE_PM:
        assert acc.loc[a, "status"] == "not_computed"
        assert math.isnan(acc.loc[a, "im"]) and math.isnan(acc.loc[a, "mm"]) and math.isnan(acc.loc[a, "isolated_im"])
        reason = acc.loc[a, "reason"]
        assert "deribit-pm" in reason and "settlement linear not in [inverse]" in reason
    assert "SPX 2027-03-19 6300 CALL" in acc.loc["MIXED", "reason"] or "and 6 more" in acc.loc["MIXED", "reason"]
    assert "ESH7" in acc.loc["SPX-DESK", "reason"] and "underlying SPX not in [BTC, ETH]" in acc.loc["SPX-DESK",
                                                                                                      "reason"]
    assert "outside the domain" in pm.explain("SPX-DESK") and "not 0" in pm.explain("SPX-DESK")
    assert int(pm.summary()["not_computed"].iloc[0]) == 3


def test_btc_accounts_under_deribit_pm_computed_as_before(pm, book):
    acc = pm.accounts.set_index("account")
    for a in INSIDE_PM:
        assert acc.loc[a, "status"] == "computed" and acc.loc[a, "reason"] is None
        alone = deribit_pm_accounts(book.positions[book.positions["account"] == a], book.market, "deribit-pm")
        assert acc.loc[a, "im"] == pytest.approx(float(alone["im"].iloc[0]), rel=1e-12)
    # figures of the landed code before the domain (issue 12): unchanged
    assert acc.loc["BTC-COVCALL", "im"] == pytest.approx(6.54708, rel=1e-5)
    assert acc.loc["MM-CRYPTO", "im"] == pytest.approx(249838, rel=1e-5)


def test_native_engine_marks_out_of_domain_accounts(book):
    r = gm.compute_margin(book.positions, book.market, "deribit-sm")
    acc = r.accounts.set_index("account")
    assert (acc.loc[list(OUTSIDE_PM), "status"] == "not_computed").all()
    assert acc.loc[list(OUTSIDE_PM), ["im", "mm"]].isna().all().all()
    assert (acc.loc[list(INSIDE_PM), "status"] == "computed").all()
    assert acc.loc[list(INSIDE_PM), "im"].gt(0).all()
    assert "not computed" in r.explain("SPX-NAKEDPUT")
    # the house model covers everything
    assert (gm.compute_margin(book.positions, book.market, "greeks-default").accounts["status"] == "computed").all()


def test_whatif_out_of_domain_is_null_not_zero(book):
    trade = book.positions[book.positions["account"] == "SPX-DESK"].head(1).copy()
    ch = gm.margin_change(book.positions, book.market, "deribit-sm", trade).set_index("account")
    assert ch.loc["SPX-DESK", "status"] == "not_computed"
    assert ch.loc["SPX-DESK", ["im_before", "im_after", "im_change"]].isna().all()


def test_domain_lifted_gives_figures_again(book):
    m = dataclasses.replace(load_model("deribit-sm"), domain=Domain())
    acc = gm.compute_margin(book.positions, book.market, m).accounts
    assert (acc["status"] == "computed").all() and acc["im"].notna().all()


# ----------------------------------------------------------------------------------- solvency & co
def test_solvency_never_calls_out_of_domain_accounts_healthy(book):
    res = assess_solvency(book.positions, book.market, book.collateral, "deribit-pm", distance=True)
    acc = res.accounts.set_index("account")
    for a in OUTSIDE_PM:
        assert acc.loc[a, "status"] == "not_computed"
        assert acc.loc[a, ["im", "mm", "margin_ratio", "available_funds"]].isna().all()
        assert np.isfinite(acc.loc[a, "equity"])  # equity is known: collateral + mark-to-market
        assert "outside the domain" in acc.loc[a, "reason"]
    assert res.summary()["n_not_computed"] == 3
    assert res.summary()["n_healthy"] + res.summary()["n_below_mm"] + res.summary()["n_below_im"] == 4
    d = res.distance[res.distance["account"].isin(OUTSIDE_PM)]
    assert len(d) and (d["method"] == "not_computed").all() and d["move"].isna().all()
    assert not (d["reason"] == "no such move within +-90%").any()


def test_solvency_cli_json_has_null_figures(tmp_path, capsys):
    p = example_paths()
    out = tmp_path / "s.json"
    assert main(["solvency", str(p["positions"]), str(p["market"]), "--collateral", str(p["collateral"]),
                 "--model", "deribit-pm", "--distance", "no", "--format", "json", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    rows = {r["account"]: r for r in doc["accounts"]}
    assert rows["SPX-DESK"]["status"] == "not_computed"
    assert rows["SPX-DESK"]["im"] is None and rows["SPX-DESK"]["mm"] is None
    assert rows["BTC-COVCALL"]["status"] == "healthy"


def test_cascade_reports_not_computed_units_and_never_liquidates_them(book):
    from greeksmargin.solvency.cascade import run_cascade

    res = run_cascade(book.positions, book.market, book.collateral, "deribit-pm", shock=-0.3, impact="none")
    assert set(res.not_computed["account"]) == set(OUTSIDE_PM)
    units = res.units.set_index("account")
    # MM unknown: liquidated only when bankrupt (equity <= 0 needs no margin figure), never for a made-up MM
    eq = units.loc[list(OUTSIDE_PM), "equity_usd"]
    assert ((units.loc[list(OUTSIDE_PM), "round"] == 0) | (eq <= 0)).all()
    assert units.loc["SPX-DESK", "error"].startswith("not computed")
    assert res.summary()["units_not_computed"] == 3


def test_sidebyside_shows_na_with_reason_and_flags_illustrative(capsys):
    p = example_paths()
    assert main(["sidebyside", str(p["positions"]), str(p["market"]), "--models", "deribit-pm,deribit-sm"]) == 0
    out = capsys.readouterr().out
    assert "Not computed (n/a)" in out  # the reasons listed below the table, per model and account
    assert any(x.startswith("deribit-pm") and "SPX-DESK" in x and "outside the domain" in x for x in out.splitlines())
    assert "Illustrative parameters" in out and "deribit-sm*" in out and "deribit-pm*" not in out
    line = next(x for x in out.splitlines() if x.startswith("SPX-DESK"))
    assert "n/a" in line and " 0 " not in line



def test_liquidate_and_compare_say_not_computed(book):
    from greeksmargin.datasets import DATA_DIR
    from greeksmargin.engine.compare import compare_with_exchange, normalize_exchange_margin
    from greeksmargin.solvency.liquidation import liquidate_account

    with pytest.raises(ModelError, match="outside the domain"):
        liquidate_account(book.positions, book.market, book.collateral, "SPX-DESK", "deribit-pm")
    exch = normalize_exchange_margin(pd.read_csv(DATA_DIR / "example_exchange_margin.csv"))
    res = run_model(book.positions, book.market, "deribit-pm")
    cmp = compare_with_exchange(res, exch).set_index("account")
    assert cmp.loc["SPX-DESK", "status"].startswith("not computed")
    assert math.isnan(cmp.loc["SPX-DESK", "im_ratio"])
    assert cmp.loc["BTC-COVCALL", "status"] == "ok"


def test_incremental_state_out_of_domain_is_nan(book):
    from greeksmargin.engine.incremental import AccountState

    spx = book.positions[book.positions["account"] == "SPX-DESK"]
    st = AccountState.from_positions(spx, book.market, "deribit-sm")
    assert all(math.isnan(x) for x in st.margin()) and "outside the domain" in st.not_computed
    btc = book.positions[book.positions["account"] == "BTC-COVCALL"]
    st2 = AccountState.from_positions(btc, book.market, "deribit-sm")
    assert math.isfinite(st2.margin()[0])
    trade = spx.iloc[:1].assign(account="BTC-COVCALL")
    assert all(math.isnan(x) for x in st2.with_trades(trade))  # a trade outside the domain: not computed
    assert math.isfinite(st2.margin()[0])  # what-if leaves the state as it was
