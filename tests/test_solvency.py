import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greeksmargin.book.collateral import load_collateral, load_example_collateral
from greeksmargin.datasets import load_example_book
from greeksmargin.risk.greeks import price_positions
from greeksmargin.solvency.assess import (
    AT_MM_RTOL,
    NO_MOVE_REASON,
    BookValuer,
    VolReaction,
    account_currency,
    assess_solvency,
    classify,
    distance_to_liquidation,
    equity_path,
    liquidatable,
    margin_function,
    shift_market,
    simple_scan_margin,
)

BOOK = load_example_book()
POS, MKT = BOOK.positions, BOOK.market
FN = simple_scan_margin()


def one_account(name):
    return POS[POS["account"] == name]


def usd(account, amount):
    return load_collateral(pd.DataFrame({"account": [account], "asset": ["USD"], "amount": [amount]}))


# ------------------------------------------------------------------ status and boundary
def test_classify_rules():
    status, at_mm = classify([10.0, 5.0, 4.0, 0.0, -1.0, 7.0], [10.0, 5.0, 4.0, 0.0, -1.0, 7.0],
                             [6.0, 6.0, 6.0, 1.0, 1.0, 6.0], [5.0, 5.0, 5.0, 1.0, 1.0, 5.0])
    assert list(status) == ["healthy", "below_im", "below_mm", "bankrupt", "bankrupt", "healthy"]
    assert list(at_mm) == [False, True, False, False, False, False]


def test_boundary_tolerance_is_relative_1e9():
    mm = 1e6
    inside = mm * (1 - 0.5 * AT_MM_RTOL)
    outside = mm * (1 - 10 * AT_MM_RTOL)
    s, a = classify([inside, outside], [inside, outside], [2e6, 2e6], [mm, mm])
    assert list(a) == [True, False]
    assert list(s) == ["below_im", "below_mm"]
    assert list(liquidatable([inside, outside, mm], [mm, mm, mm])) == [False, True, False]


@pytest.mark.parametrize("account", ["SPX-NAKEDPUT", "ETH-STRADDLE", "MIXED"])
def test_account_exactly_at_mm_is_at_the_boundary(account):
    pos = one_account(account)
    # no collateral: equity = mtm; then hold exactly MM - mtm in the margin currency
    st0 = assess_solvency(pos, MKT, None, margin_fn=FN, no_collateral=True).accounts.iloc[0]
    ccy = st0["currency"]
    top_up = st0["mm"] - st0["mtm"]
    coll = load_collateral(pd.DataFrame({"account": [account], "asset": [ccy], "amount": [top_up]}))
    row = assess_solvency(pos, MKT, coll, margin_fn=FN).accounts.iloc[0]
    assert row["equity"] == pytest.approx(row["mm"], rel=1e-12)
    assert bool(row["at_mm"]) is True
    assert row["status"] != "below_mm"
    assert row["margin_ratio"] == pytest.approx(1.0, rel=1e-9)
    # at the boundary the distance to liquidation is (about) zero, and never "already below MM"
    d = distance_to_liquidation(BookValuer(pos, MKT, coll, FN), include_all=False)
    assert (d["reason"] != "already below MM").all()
    assert d["move"].abs().min() < 1e-3
    # one part in a million less collateral: below MM, not at the boundary
    coll2 = coll.assign(amount=coll["amount"] - 1e-6 * abs(row["mm"]))
    row2 = assess_solvency(pos, MKT, coll2, margin_fn=FN).accounts.iloc[0]
    assert row2["status"] == "below_mm" and not row2["at_mm"]


# ------------------------------------------------------------------ equity definition
def test_equity_is_collateral_plus_option_value_and_futures_count_zero():
    res = assess_solvency(POS, MKT, load_example_collateral(), margin_fn=FN).accounts.set_index("account")
    priced = price_positions(POS, MKT)
    # SPX-DESK is USD-margined: mtm = value of options (futures: 0)
    desk = priced[priced["account"] == "SPX-DESK"]
    assert res.loc["SPX-DESK", "mtm"] == pytest.approx(desk["value_usd"].sum(), rel=1e-12)
    assert (desk.loc[desk["kind"] == "future", "value_usd"] == 0).all()
    # BTC-COVCALL is coin-margined: mtm in BTC = coin value of its inverse options
    cc = priced[priced["account"] == "BTC-COVCALL"]
    assert res.loc["BTC-COVCALL", "currency"] == "BTC"
    assert res.loc["BTC-COVCALL", "mtm"] == pytest.approx(cc["value_ccy"].sum(), rel=1e-12)
    r = res.loc["BTC-COVCALL"]
    assert r["equity"] == pytest.approx(r["collateral_mm"] + r["mtm"])
    assert r["available_funds"] == pytest.approx(r["equity_im"] - r["im"])


def test_account_currency_rule():
    ccy = account_currency(POS, MKT)
    assert ccy["BTC-COVCALL"] == "BTC" and ccy["ETH-STRADDLE"] == "ETH"
    assert ccy["MIXED"] == "USD" and ccy["MM-CRYPTO"] == "USD" and ccy["SPX-DESK"] == "USD"


def test_futures_pnl_in_a_moved_market():
    pos = one_account("SPX-DESK")
    fut = pos[pos["kind"] == "future"]
    book = BookValuer(fut, MKT, None, FN)
    vals = book.position_values(book.move_vector({"SPX": -0.1}))
    f0 = price_positions(fut, MKT)["forward"].to_numpy()
    size = (fut["quantity"] * fut["multiplier"]).to_numpy()
    np.testing.assert_allclose(vals, -0.1 * f0 * size, rtol=1e-12)


def test_inverse_future_coin_pnl():
    pos = one_account("MM-CRYPTO")
    fut = pos[(pos["kind"] == "future") & (pos["underlying"] == "BTC")]
    book = BookValuer(fut, MKT, None, FN)
    m = 0.25
    vals = book.position_values(book.move_vector({"BTC": m}))
    size = float(fut["quantity"].iloc[0])
    assert vals[0] == pytest.approx(size * (1 - 1 / (1 + m)), rel=1e-12)  # Deribit's inverse-option conventions


# ------------------------------------------------------------------ moved markets
def test_shift_market_scales_spot_forward_and_raises_vol():
    vr = VolReaction.from_model("greeks-default", MKT.underlyings)
    m2 = shift_market(MKT, {"BTC": -0.2}, vol_reaction=vr)
    assert m2.spot("BTC") == pytest.approx(0.8 * MKT.spot("BTC"))
    assert m2.spot("ETH") == MKT.spot("ETH")
    t = np.array([0.1, 0.5])
    np.testing.assert_allclose(m2.forward("BTC", t), 0.8 * MKT.forward("BTC", t), rtol=1e-12)
    k = 0.8 * np.array([90000.0, 100000.0])
    # sticky moneyness surface: compare at the same log-moneyness
    v0 = MKT.vol("BTC", t, k / 0.8)
    v1 = m2.vol("BTC", t, k)
    assert np.all(v1 > v0)


def test_vol_reaction_follows_model_rule():
    vr = VolReaction.from_model("greeks-default", MKT.underlyings)
    rule, r = vr._rule("BTC"), vr._range("BTC")
    v, t = np.array([0.5]), np.array([30 / 365])
    full = rule.shocked(v, t, np.array([1]))[0]
    assert vr.vols("BTC", -r, v, t)[0] == pytest.approx(full[0])
    assert vr.vols("BTC", -r / 2, v, t)[0] == pytest.approx(0.5 + 0.5 * (full[0] - 0.5))
    assert vr.vols("BTC", -3 * r, v, t)[0] == pytest.approx(full[0])  # capped at the full shock
    assert vr.vols("BTC", 0.0, v, t)[0] == 0.5


@settings(max_examples=15, deadline=None)
@given(m=st.floats(-0.6, 0.6))
def test_collateral_moves_in_scenarios(m):
    # a coin held by a USD account moves with its underlying in the state
    coll = load_collateral(pd.DataFrame({"account": ["X"], "asset": ["BTC"], "amount": [2.0], "mm_haircut": [0.0]}))
    book = BookValuer(POS.iloc[:0], MKT, coll, FN, accounts=["X"])
    st0 = book.state({"BTC": m}, margin=pd.DataFrame({"im": [], "mm": [], "currency": []}))
    assert st0["equity"].iloc[0] == pytest.approx(2.0 * MKT.spot("BTC") * (1 + m), rel=1e-12)


# ------------------------------------------------------------------ distance to liquidation
def test_distance_moves_account_to_mm_within_1e6():
    coll = load_example_collateral()
    book = BookValuer(POS, MKT, coll, FN)
    d = distance_to_liquidation(book, underlyings=["SPX", "ETH"])
    found = d[d["reason"] == ""]
    assert len(found) >= 2
    for row in found.itertuples():
        one = book.subset([row.account])
        u = row.underlying
        mv = np.full(len(one.unders), row.move) if u == "ALL" else one.move_vector({u: row.move})
        s = one.state(mv)
        e, mm = float(s["equity"].iloc[0]), float(s["mm"].iloc[0])
        assert abs(e - mm) <= 1e-6 * max(abs(mm), abs(e))
        assert row.method == "root"
        if u != "ALL":
            assert row.price == pytest.approx(MKT.spot(u) * (1 + row.move))
    nothing = d[d["reason"] == NO_MOVE_REASON]
    assert nothing["move"].isna().all()


def test_distance_with_the_margin_engine():
    pos = one_account("SPX-NAKEDPUT")
    coll = usd("SPX-NAKEDPUT", 6.9e6)
    res = assess_solvency(pos, MKT, coll, "greeks-default", distance=True, include_all=False)
    d = res.distance.iloc[0]
    assert d["underlying"] == "SPX" and d["direction"] == "down" and -0.9 < d["move"] < 0
    assert abs(d["equity_at_move"] - d["mm_at_move"]) <= 1e-6 * abs(d["mm_at_move"])
    # the nearer root is the first crossing: just before it the account is above MM
    book = BookValuer(pos, MKT, coll, margin_function("greeks-default"),
                vol_reaction=VolReaction.from_model("greeks-default", MKT.underlyings))
    s = book.state({"SPX": d["move"] * 0.99})
    assert float(s["equity"].iloc[0]) > float(s["mm"].iloc[0])


def test_no_move_within_90pct_is_nan_with_reason():
    # a fully collateralised long call never reaches MM
    pos = POS[(POS["account"] == "MIXED") & (POS["kind"] == "option") & (POS["quantity"] > 0)].iloc[:1]
    coll = usd("MIXED", 1e6)
    d = distance_to_liquidation(BookValuer(pos, MKT, coll, FN), include_all=False)
    assert d["move"].isna().all()
    assert (d["reason"] == NO_MOVE_REASON).all()


def test_already_below_mm_is_zero_with_reason():
    pos = one_account("SPX-NAKEDPUT")
    d = distance_to_liquidation(BookValuer(pos, MKT, usd("SPX-NAKEDPUT", 1.0), FN), include_all=False)
    assert (d["move"] == 0).all() and (d["reason"] == "already below MM").all()


def test_equity_path_matches_state():
    book = BookValuer(POS, MKT, load_example_collateral(), FN)
    p = equity_path(book, "SPX-DESK", "SPX", [-0.1, 0.0])
    st0 = book.state().loc["SPX-DESK"]
    assert p.loc[1, "equity"] == pytest.approx(st0["equity"])
    st1 = book.state({"SPX": -0.1}).loc["SPX-DESK"]
    assert p.loc[0, "equity"] == pytest.approx(st1["equity"])
    assert p.loc[0, "mm"] == pytest.approx(st1["mm"])


def test_isolated_margin_function_sums_positions():
    pos = one_account("BTC-SPREADS")
    iso = margin_function("greeks-default", isolated=True)(pos, MKT)
    cross = margin_function("greeks-default")(pos, MKT)
    from greeksmargin.engine.margin import compute_margin

    acc = compute_margin(pos, MKT, "greeks-default").accounts.iloc[0]
    fx = MKT.fx_to_usd(acc["currency"])
    assert iso.loc["BTC-SPREADS", "im"] == pytest.approx(acc["isolated_im"] * fx, rel=1e-9)
    assert cross.loc["BTC-SPREADS", "im"] <= iso.loc["BTC-SPREADS", "im"] / fx + 1e-12


# ------------------------------------------------------------------ CLI
def _paths():
    from greeksmargin.datasets import example_paths

    p = example_paths()
    return str(p["positions"]), str(p["market"]), str(p["positions"].parent / "example_collateral.csv")


def test_cli_solvency_json_and_html(tmp_path, capsys):
    import json

    from greeksmargin.cli import main

    pos, mkt, coll = _paths()
    assert main(["solvency", pos, mkt, "--collateral", coll, "--format", "json", "--distance", "no"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["accounts"] == 7
    assert {a["status"] for a in doc["accounts"]} <= {"healthy", "below_im", "below_mm", "bankrupt"}
    out = tmp_path / "s.html"
    assert main(["solvency", pos, mkt, "--collateral", coll, "--format", "html", "--out", str(out),
                 "--path-account", "SPX-NAKEDPUT"]) == 0
    html = out.read_text()
    assert "Margin-ratio distribution" in html and "Equity path" in html and "data:image/png;base64" in html


def test_cli_bad_collateral_exit_2(tmp_path, capsys):
    from greeksmargin.cli import main

    pos, mkt, _ = _paths()
    bad = tmp_path / "c.csv"
    bad.write_text("account,asset,amount\nA,BTC,abc\n")
    assert main(["solvency", pos, mkt, "--collateral", str(bad)]) == 2
    assert "column 'amount'" in capsys.readouterr().err


@pytest.mark.parametrize("account", ["BTC-COVCALL", "MIXED", "SPX-DESK"])
@pytest.mark.parametrize("move", [-0.3, 0.2])
def test_fast_revaluation_equals_pricing_on_the_shifted_market(account, move):
    # the vectorised revaluation of BookValuer equals the pricing layer run on the moved snapshot
    pos = one_account(account)
    book = BookValuer(pos, MKT, None, FN, vol_reaction=VolReaction.from_model("greeks-default", MKT.underlyings))
    mv = np.full(len(book.unders), move)
    fast = book.position_values(mv)
    priced = price_positions(pos, book.shifted_market(mv))
    opt = (priced["kind"] == "option").to_numpy()
    ccy = book.currency[0]
    ref = priced["value_ccy"].to_numpy()
    conv = np.array([1.0 if c == ccy else book.fx_at(c, mv) / book.fx_at(ccy, mv) for c in priced["margin_currency"]])
    np.testing.assert_allclose(fast[opt], (ref * conv)[opt], rtol=1e-10, atol=1e-9)


# ------------------------------------------------------------------ batched evaluation (one market per account)
@pytest.fixture(scope="module")
def population():
    from greeksmargin.solvency.population import generate_population

    pos, coll = generate_population(240, 5, market=MKT)
    ex = POS.copy()
    ex.index = [f"ex{i}" for i in range(len(ex))]  # the example book adds USD accounts holding coin-settled contracts
    return pd.concat([pos, ex]), pd.concat([load_collateral(coll), load_example_collateral()], ignore_index=True)


def _kinds(book):
    """Indices of a coin-margined, a USD account holding coin-settled contracts, and a plain USD account."""
    inv = book.positions.groupby("account")["settlement"].agg(lambda s: (s == "inverse").any())
    ccy = dict(zip(book.accounts, book.currency))
    coin = [a for a in book.accounts if ccy[a] != "USD"]
    mixed = [a for a in book.accounts if ccy[a] == "USD" and inv.get(a, False)]
    plain = [a for a in book.accounts if ccy[a] == "USD" and not inv.get(a, True)]
    return coin, mixed, plain


@pytest.mark.parametrize(("model", "rtol"), [("greeks-default", 1e-7), ("deribit-sm", 1e-12), ("tims-pm", 1e-12)])
@pytest.mark.parametrize("isolated", [False, True])
def test_batched_margin_equals_the_engine_on_each_accounts_moved_market(population, model, rtol, isolated):
    # every account at its own moves, in one engine call == compute_margin on that account's moved snapshot
    # (greeks-default: its finite-difference Greeks turn last-bit differences of the moved inputs into ~1e-8)
    pos, coll = population
    book = BookValuer(pos, MKT, coll, margin_function(model, isolated=isolated),
                vol_reaction=VolReaction.from_model(model, MKT.underlyings))
    assert hasattr(book.margin_fn, "batched")
    rng = np.random.default_rng(11)
    M = rng.uniform(-0.5, 0.5, (len(book.accounts), len(book.unders)))
    st = book.state(M)
    coin, mixed, plain = _kinds(book)
    assert coin and mixed and plain
    for a in coin[:3] + mixed[:3] + plain[:3]:
        i = book.accounts.index(a)
        ref = book.subset([a]).state(M[i]).iloc[0]  # compute_margin on shift_market(M[i])
        # an account outside the model's domain is not computed (NaN) on both paths, with the same reason
        assert st.loc[a, "not_computed"] == ref["not_computed"]
        assert np.isnan(st.loc[a, "mm"]) == bool(ref["not_computed"])
        assert st.loc[a, "mm"] == pytest.approx(ref["mm"], rel=rtol, abs=1e-12, nan_ok=True)
        assert st.loc[a, "im"] == pytest.approx(ref["im"], rel=rtol, abs=1e-12, nan_ok=True)
        assert st.loc[a, "equity"] == pytest.approx(ref["equity"], rel=1e-12)


def test_batched_distance_moves_every_account_to_mm_within_1e6(population):
    pos, coll = population
    fn = margin_function("greeks-default")
    book = BookValuer(pos, MKT, coll, fn, vol_reaction=VolReaction.from_model("greeks-default", MKT.underlyings))
    assert len(book.accounts) >= 200
    d = distance_to_liquidation(book)
    found = d[np.isfinite(d["move"]) & (d["reason"] == "")]
    assert len(found) >= 100
    assert (found["method"] == "root").all()
    gap = (found["equity_at_move"] - found["mm_at_move"]).abs()
    assert (gap <= 1e-6 * np.maximum(found["equity_at_move"].abs(), found["mm_at_move"].abs())).all()
    # re-evaluated one account at a time on the moved snapshot (the engine alone): still at MM within 1e-6
    coin, mixed, plain = _kinds(book)
    pick = pd.concat([found[found["account"].isin(g)].head(3) for g in (coin, mixed, plain)])
    assert len(pick) >= 6
    for row in pick.itertuples():
        one = book.subset([row.account])
        mv = np.full(len(one.unders), row.move) if row.underlying == "ALL" else one.move_vector(
            {row.underlying: row.move})
        s = one.state(mv).iloc[0]
        assert abs(s["equity"] - s["mm"]) <= 1e-6 * max(abs(s["equity"]), abs(s["mm"]))
        assert s["mm"] == pytest.approx(row.mm_at_move, rel=1e-7)
    none = d[d["reason"] == NO_MOVE_REASON]
    assert len(none) and none["move"].isna().all()


# ------------------------------------------------------------------ failures let a batch finish
def _with_bad_account():
    bad = POS[(POS["account"] == "SPX-NAKEDPUT")].copy()
    bad["account"] = "BAD"
    bad["underlying"] = "DOGE"
    bad["instrument"] = "DOGE-X"
    bad.index = [f"bad{i}" for i in range(len(bad))]
    return pd.concat([POS, bad])


def test_unpriceable_account_gets_an_error_row_and_the_others_are_computed():
    pos = _with_bad_account()
    coll = load_example_collateral()
    fn = margin_function("greeks-default")
    res = assess_solvency(pos, MKT, coll, "greeks-default", distance=True).accounts.set_index("account")
    ref = assess_solvency(POS, MKT, coll, "greeks-default").accounts.set_index("account")
    assert res.loc["BAD", "status"] == "error" and "DOGE" in res.loc["BAD", "error"]
    assert np.isnan(res.loc["BAD", ["equity", "im", "mm", "margin_ratio"]].to_numpy(dtype=float)).all()
    good = ref.index
    np.testing.assert_allclose(res.loc[good, "mm"], ref["mm"], rtol=1e-12)
    assert (res.loc[good, "status"] == ref["status"]).all()
    summ = assess_solvency(pos, MKT, coll, margin_fn=fn).summary()
    assert summ["n_error"] == 1 and summ["accounts"] == len(ref) + 1
    d = distance_to_liquidation(BookValuer(pos, MKT, coll, fn), underlyings=["SPX"])
    bad_rows = d[d["account"] == "BAD"]
    assert len(bad_rows) and (bad_rows["method"] == "error").all() and bad_rows["move"].isna().all()
    assert (d.loc[d["account"] != "BAD", "error"] == "").all()
    assert (d.loc[d["account"] != "BAD", "method"] != "error").all()


def test_cascade_and_liquidation_with_an_unpriceable_account():
    from greeksmargin.errors import MarketDataError
    from greeksmargin.solvency.cascade import run_cascade
    from greeksmargin.solvency.liquidation import liquidate_account

    pos = _with_bad_account()
    coll = load_example_collateral()
    for mode in ("cross", "isolated"):
        r = run_cascade(pos, MKT, coll, margin_fn=FN, shock=-0.3, mode=mode)
        ref = run_cascade(POS, MKT, coll, margin_fn=FN, shock=-0.3, mode=mode)
        assert list(r.errors["account"]) == ["BAD"]
        assert r.total_shortfall_usd == pytest.approx(ref.total_shortfall_usd, rel=1e-12, abs=1e-9)
        assert (r.units.loc[r.units["account"] == "BAD", "round"] == 0).all()
    with pytest.raises(MarketDataError, match="DOGE"):
        liquidate_account(pos, MKT, coll, "BAD", margin_fn=FN)


def test_cli_reports_error_rows(tmp_path, capsys):
    import json

    from greeksmargin.cli import main
    from greeksmargin.datasets import example_paths

    p = example_paths()
    raw = pd.read_csv(p["positions"])
    extra = raw.iloc[:1].copy()
    extra["account"] = "BAD"
    extra["underlying"] = "DOGE"
    extra["instrument"] = "DOGE-PERP"
    extra["kind"] = "perpetual"
    for c in ("option_type", "strike", "expiry"):
        if c in extra.columns:
            extra[c] = np.nan
    f = tmp_path / "pos.csv"
    pd.concat([raw, extra]).to_csv(f, index=False)
    coll = str(p["positions"].parent / "example_collateral.csv")
    assert main(["solvency", str(f), str(p["market"]), "--collateral", coll, "--format", "json",
                 "--distance", "no"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {a["account"]: a for a in doc["accounts"]}
    assert rows["BAD"]["status"] == "error" and "DOGE" in rows["BAD"]["error"] and rows["BAD"]["mm"] is None
    assert doc["summary"]["n_error"] == 1 and rows["SPX-DESK"]["status"] != "error"
    assert main(["cascade", str(f), str(p["market"]), "--collateral", coll, "--shock", "-0.25"]) == 0
    assert "Accounts not computed" in capsys.readouterr().out
