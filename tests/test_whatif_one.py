"""The one-trade fast path of AccountState.with_trades (greeksmargin.engine.whatif_one) == general path == full.

Property: for a random single trade on the bundled example book (resize or close a held position, a new
option contract, a future, a perpetual or spot, linear or coin-settled, in any account), under
``greeks-default``, ``deribit-sm`` (standard figures, a restricted domain) and two variants of
``greeks-default`` that switch on the other branches of the fast path (Taylor delta / gamma / vega from
finite differences, an absolute vega shock, gains offset at 0.8, gross roll, a short option minimum, a
contract floor, an MM expression, sum aggregation, no cap at isolated), on the numba and numpy backends:
``whatif_one.one_trade`` (when it answers) equals the general path
(``AccountState._with_arrays``) and :func:`greeksmargin.compute_margin` on the account with the trade
appended, to 1e-9 relative. Deterministic cases check that the fast path does answer the cases it is
meant for, defers the others, validates the trade and forgets its caches when the state changes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import greeksmargin as gm
from greeksmargin.engine.incremental import AccountState
from greeksmargin.engine.models import load_model, models_dir
from greeksmargin.engine.whatif_one import one_trade
from greeksmargin.errors import InputError
from greeksmargin.risk.kernels import numba_available

BOOK = gm.datasets.load_example_book()
MK = BOOK.market
POS = BOOK.positions.reset_index(drop=True)
ACCOUNTS = sorted(POS["account"].unique())
BACKENDS = ["numba", "numpy"] if numba_available() else ["numpy"]
_DEFAULT = (models_dir() / "greeks-default.toml").read_text()


def _variant(name: str, edits: list[tuple[str, str]]) -> str:
    text = _DEFAULT
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    return text.replace('name = "greeks-default"', f'name = "{name}"', 1)


#: model variants: (TOML text edits) switching the fast path's other branches on
_VARIANTS = {
    "taylor-sum": [
        ('method = "revaluation"', 'method = "taylor"'),
        ("gain_offset = 1.0", "gain_offset = 0.8"),
        ('scope = "calendar"', 'scope = "gross"'),
        ("[components.short_option_minimum]\nrate = 0.0", "[components.short_option_minimum]\nrate = 0.01"),
        ("[components.long_premium_cap]",
         '[components.contract_floor]\nper_contract = 3.0\nkinds = ["option", "future"]\n\n'
         "[components.long_premium_cap]"),
        ('im = "min(max(scan, delta, gamma, vega) + short_option_minimum + roll, long_premium_cap)"',
         'im = "min(max(scan, delta, gamma, vega) + short_option_minimum + roll + contract_floor, long_premium_cap)"'),
        ("mm_factor = 0.8", 'mm = "0.5 * max(scan, delta) + 0.5 * vega + contract_floor"'),
        ('method = "correlation"', 'method = "sum"'),
    ],
    "taylor-corr": [
        ('method = "revaluation"', 'method = "taylor"'),
        ('kind = "relative"\nshort_power = 0.3\nlong_power = 0.13\npivot_days = 30.0\nfloor_days = 1.0\n'
         "bucket_days", 'kind = "absolute"\nshort_power = 0.3\nlong_power = 0.13\npivot_days = 30.0\n'
         "floor_days = 1.0\nbucket_days"),
        ("shock = 0.207332", "shock = 0.05"),
        ("cap_at_isolated = true", "cap_at_isolated = false"),
    ],
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    d: Path = tmp_path_factory.mktemp("models")
    out: dict[str, object] = {n: load_model(n) for n in ("greeks-default", "deribit-sm")}
    for name, edits in _VARIANTS.items():
        p = d / f"{name}.toml"
        p.write_text(_variant(name, edits))
        out[name] = load_model(p)
    return out


_STATES: dict[tuple[str, str, str], AccountState] = {}


def _state(model: Any, acc: str, backend: str) -> AccountState:
    key = (model.name, acc, backend)
    if key not in _STATES:
        _STATES[key] = AccountState.from_positions(POS[POS["account"] == acc], MK, model, account=acc,
                                                   backend=backend)
    return _STATES[key]


def _full(model: object, acc: str, trade: dict) -> tuple[float, float]:
    book = pd.concat([POS[POS["account"] == acc], pd.DataFrame([trade])], ignore_index=True)
    row = gm.compute_margin(book, MK, model).accounts.set_index("account").loc[acc]
    return float(row["im"]), float(row["mm"])


def _rel(x: float, y: float) -> float:
    if math.isnan(x) or math.isnan(y):
        return 0.0 if (math.isnan(x) and math.isnan(y)) else math.inf
    return abs(x - y) / max(abs(y), 1e-12)


def _ticket(row: dict) -> dict:
    """A trade as an order ticket: the row's set fields only (no NaN / None / NaT)."""
    return {k: v for k, v in row.items() if v is not None and not (isinstance(v, float) and math.isnan(v))
            and v is not pd.NaT}


@st.composite
def trades(draw: st.DrawFn, acc: str) -> dict:
    held = POS[POS["account"] == acc]
    what = draw(st.sampled_from(["resize", "close", "option", "future", "perpetual", "spot"]))
    if what in ("resize", "close"):
        r = held.iloc[draw(st.integers(0, len(held) - 1))].to_dict()
        r["quantity"] = -r["quantity"] if what == "close" else r["quantity"] * draw(
            st.sampled_from([-1.5, -0.5, 0.25, 2.0]))
        return _ticket(r)
    pool = POS[POS["kind"] == what]
    r = pool.iloc[draw(st.integers(0, len(pool) - 1))].to_dict()
    r["account"] = acc
    if what == "option":
        r["strike"] = float(round(r["strike"] * draw(st.sampled_from([0.8, 0.95, 1.0, 1.1, 1.3]))))
        r["instrument"] = f"{r['instrument']}-K{r['strike']:g}"
        r["option_type"] = draw(st.sampled_from(["call", "put"]))
    if what != "spot" and draw(st.booleans()):
        r["settlement"] = draw(st.sampled_from(["linear", "inverse"]))
    r["quantity"] = draw(st.sampled_from([-3.0, -1.0, 0.5, 2.0]))
    return _ticket(r)


@given(data=st.data())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fast_path_equals_general_path_and_full_recompute(models, data):
    name = data.draw(st.sampled_from(sorted(models)))
    acc = data.draw(st.sampled_from(ACCOUNTS))
    backend = data.draw(st.sampled_from(BACKENDS))
    trade = data.draw(trades(acc))
    model = models[name]
    state = _state(model, acc, backend)
    fast = one_trade(state, trade)
    general = state._with_arrays(state._trade_arrays(trade), trade)
    want = _full(model, acc, trade)
    if fast is not None:
        assert _rel(fast[0], general[0]) < 1e-12 and _rel(fast[1], general[1]) < 1e-12, (name, fast, general)
        assert _rel(fast[0], want[0]) < 1e-9 and _rel(fast[1], want[1]) < 1e-9, (name, fast, want)
    got = state.with_trades(trade)
    assert _rel(got[0], want[0]) < 1e-9 and _rel(got[1], want[1]) < 1e-9, (name, acc, trade, got, want)


def _held(acc: str, kind: str) -> dict:
    return _ticket(POS[(POS["account"] == acc) & (POS["kind"] == kind)].iloc[0].to_dict())


# the fast path answers: resize / close / new contract / delta-one, linear and coin-settled, coin riding in USD
CASES = {
    "resize held option": ("MM-CRYPTO", lambda: {**_held("MM-CRYPTO", "option"), "quantity": 3.0}),
    "close held future": ("MM-CRYPTO", lambda: {**_held("MM-CRYPTO", "future"),
                                                "quantity": -_held("MM-CRYPTO", "future")["quantity"]}),
    "new option contract": ("SPX-DESK", lambda: {**_held("SPX-DESK", "option"), "strike": 4321.0,
                                                 "instrument": "SPX-NEW-4321", "quantity": -2.0}),
    "perpetual": ("MIXED", lambda: {**_held("MIXED", "perpetual"), "quantity": 500.0}),
    "spot": ("MIXED", lambda: {**_held("MIXED", "spot"), "quantity": -5.0}),
    "coin-settled option in a USD account": ("MIXED", lambda: {
        **_held("BTC-COVCALL", "option"), "account": "MIXED", "instrument": "BTC-INV-NEW", "quantity": 2.0}),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_fast_path_answers_its_cases(models, case, backend):
    acc, make = CASES[case]
    trade = make()
    model = models["greeks-default"]
    state = _state(model, acc, backend)
    fast = one_trade(state, trade)
    assert fast is not None
    want = _full(model, acc, trade)
    assert _rel(fast[0], want[0]) < 1e-9 and _rel(fast[1], want[1]) < 1e-9
    assert state.with_trades([trade]) == fast  # a one-trade list takes the same path


def test_fast_path_defers_what_it_does_not_cover(models):
    model = models["greeks-default"]
    st_ = _state(model, "BTC-COVCALL", BACKENDS[0])  # coin-margined (BTC)
    linear = {**_held("SPX-DESK", "future"), "account": "BTC-COVCALL"}  # new underlying, and USD margin after
    assert one_trade(st_, linear) is None
    assert _rel(st_.with_trades(linear)[0], _full(model, "BTC-COVCALL", linear)[0]) < 1e-9
    american = {**_held("BTC-COVCALL", "option"), "exercise": "american"}
    assert one_trade(st_, american) is None
    tims = _state(load_model("tims-pm"), "SPX-DESK", BACKENDS[0])  # offsets aggregation
    assert one_trade(tims, {**_held("SPX-DESK", "option"), "quantity": 1.0}) is None


@pytest.mark.parametrize(("field", "value"), [("strike", -5.0), ("kind", "swap"), ("quantity", math.inf),
                                              ("option_type", "straddle"), ("account", "SOMEONE-ELSE"),
                                              ("quantity", 1e300), ("quantity", "ten"), ("strike", 1e13),
                                              ("multiplier", 1e10), ("expiry", "2026-02-30"),
                                              ("expiry", "9999-12-31"), ("notes", "hedge")])
def test_bad_trade_raises_naming_the_field(models, field, value):
    """Each fault raises an InputError naming its field, on the fast path and through ``with_trades``
    (the loader's bounds: |quantity| <= 1e12, strike <= 1e12, multiplier <= 1e9; a key the positions
    schema does not define is refused, never ignored)."""
    st_ = _state(models["greeks-default"], "MM-CRYPTO", BACKENDS[0])
    bad = {**_held("MM-CRYPTO", "option"), field: value}
    for call in (lambda: one_trade(st_, bad), lambda: st_.with_trades(bad), lambda: st_.with_trades([bad, bad])):
        with pytest.raises(InputError) as e:
            call()
        assert e.value.column == field


def test_a_quantity_unit_goes_through_the_loader(models):
    """A trade with ``quantity_unit`` is converted by the loader (the frame path), never read as contracts."""
    model = models["greeks-default"]
    st_ = _state(model, "BTC-COVCALL", BACKENDS[0])
    coins = {**_held("BTC-COVCALL", "option"), "quantity": 2.0}
    as_coins = {**coins, "quantity_unit": "coin"}
    assert st_.with_trades(as_coins) == pytest.approx(st_.with_trades(coins), rel=1e-12)
    usd = {**coins, "quantity_unit": "usd"}
    with pytest.raises(InputError) as e:  # an option's quantity in USD is not a form the loader accepts
        st_.with_trades(usd)
    assert e.value.column in ("quantity_unit", "quantity")


def test_add_trades_drops_the_cached_units(models):
    model = models["greeks-default"]
    acc = "MM-CRYPTO"
    state = AccountState.from_positions(POS[POS["account"] == acc], MK, model, account=acc,
                                        backend=BACKENDS[0])
    t1 = {**_held(acc, "option"), "quantity": 5.0}
    eth = _ticket(POS[(POS["account"] == acc) & (POS["underlying"] == "ETH")].iloc[0].to_dict())
    t2 = {**eth, "quantity": -40.0}  # another underlying: the unit t1 does not touch changes
    state.with_trades(t1)
    state.add_trades(t2)
    got = state.with_trades(t1)
    book = pd.concat([POS[POS["account"] == acc], pd.DataFrame([t2, t1])], ignore_index=True)
    want = gm.compute_margin(book, MK, model).accounts.set_index("account").loc[acc]
    assert _rel(got[0], float(want["im"])) < 1e-9 and _rel(got[1], float(want["mm"])) < 1e-9
