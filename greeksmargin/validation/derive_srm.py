"""Validation suite ``derive-srm``: Derive (Lyra v2) standard margin manager, the exchange's own unit tests.

Case file format (JSON object; original: derivexyz/v2-core @ 7736900, test/risk-managers/unit-tests/
StandardManager/): ``source``, ``n_cases``, ``portfolio_fixture`` (the shared market of the portfolio cases) and
``cases``, each with ``id``, ``group``, ``parameters`` (the exchange's names: option, perp_margin,
oracle_contingency, depeg, base_asset_margin_factor), ``expected`` and ``harness`` (the test file). Two groups:

- ``srm_scenario``: a full ``scenario`` (TestStandardManager_Cases.t.sol): option lines (underlying, seconds to
  expiry, strike, call flag, amount, vol, vol confidence), cash, perps with entry price and funding indices,
  wETH / wBTC balances, spot / perp prices and confidences, forwards per option line with confidences, the USDC
  price, settlement prices (used as the forward of an expiry under one hour, as the harness does).
  ``expected``: ``im``, ``mm``, ``mtm`` and ``components`` (the exchange's per-component figures); each within
  the case's ``tolerance_rel`` (0.1 %) relative.
- ``srm_portfolio``: named ``portfolio`` (options by expiry date, perps with entry price, bases, cash) on the
  ``portfolio_fixture`` (TestStandardManager_Portfolio_Cases.t.sol), after the Solidity statements of
  ``harness_overrides_solidity`` (feed setters; see :mod:`greeksmargin.validation.derive_srm_harness`).
  ``expected``: ``im``, ``mm`` as whole USD; pass when the margin truncated toward zero equals it.

The feeds are built as the exchange's mock feeds hold them: one forward and one vol confidence per
(underlying, expiry), the last one set wins; a vol per (underlying, expiry, strike). An unknown key anywhere is an
error naming it. ``computed`` mirrors ``expected`` in the exchange's sign (negative = shortfall).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

from greeksmargin.errors import CaseFormatError
from greeksmargin.methodologies.derive_srm import (
    SRMExpiry,
    SRMMarket,
    SRMOption,
    SRMParams,
    SRMPortfolio,
    bounded_margin,
    derive_srm_margin,
    params_from_dict,
)
from greeksmargin.validation.core import (
    CaseResult,
    SuiteResult,
    Tolerance,
    load_case_files,
    require_keys,
    run_guarded,
)
from greeksmargin.validation.derive_srm_harness import Feeds, apply_overrides

DEFAULT_TOLERANCE_REL = 1e-3
FILE_KEYS = ("source", "portfolio_fixture", "n_cases", "cases")
CASE_KEYS = {
    "srm_scenario": ("id", "group", "scenario", "scenario_units", "parameters", "expected", "tolerance_rel",
                     "harness"),
    "srm_portfolio": ("id", "group", "portfolio", "fixture", "parameters", "expected", "tolerance", "harness",
                      "harness_overrides_solidity"),
}
#: scenario keys the exchange's harness reads
SCENARIO_USED = (
    "OptionUnderlying", "OptionExpiries", "OptionStrikes", "OptionIsCall", "OptionAmounts", "OptionVols",
    "OptionVolConfidences", "Cash", "Perps_ETH", "Perps_BTC", "wETH", "wBTC", "LastEntryETH", "LastEntryBTC",
    "ETHGlobalFundingIndex", "BTCGlobalFundingIndex", "AccountETHFundingIndex", "AccountBTCFundingIndex",
    "ETHSpotPrice", "BTCSpotPrice", "SpotPerpConfidences", "FeedExpiries", "Forwards", "ForwardConfidences",
    "USDCValue", "PerpPrice", "SettlementPriceETH", "SettlementPriceBTC")
#: scenario keys of the published format that the harness does not read (the generator's own inputs)
SCENARIO_UNUSED = ("Discounts", "DiscountConfidences", "SVIParams", "PercentFixedETH", "PercentFixedBTC",
                   "TWAP_ETH", "TWAP_BTC", "SpotPrice")
MARKETS = ("ETH", "BTC")
#: the harness treats an expiry closer than this as settling: its forward is the settlement price
SETTLING_SECONDS = 3600
COMPONENTS_GLOBAL = ("PortfolioMtM", "UnrealizedPNL", "UnsettledFunding", "PerpMargin", "OracleConts", "DepegIMs",
                     "BaseMargin", "Cash", "HandMM", "HandIM", "realMM", "realIM")
PORTFOLIO_KEYS = ("options", "perps", "bases", "cash")
OPTION_KEYS = ("amount", "expiry", "strike", "type", "underlying")
PERP_KEYS = ("amount", "entryPrice", "underlying")
BASE_KEYS = ("amount", "underlying")
FIXTURE_KEYS = ("spot", "perp_mark", "expiries", "default_vol", "default_confidence", "usdc_price", "units")


def _unknown(obj: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    bad = [k for k in obj if k not in known]
    if bad:
        raise CaseFormatError(f"{where}: unknown key '{bad[0]}' (known: {', '.join(known)})", column=bad[0])


def _num(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise CaseFormatError(f"{where}: expected a number, got {v!r}", column=where)
    return v


def _is_case_file(doc: Any) -> bool:
    return (isinstance(doc, dict) and isinstance(doc.get("cases"), list)
            and any(isinstance(c, dict) and c.get("group") in CASE_KEYS for c in doc["cases"]))


def _check_format(doc: Any, file: Path) -> dict[str, Any]:
    if not isinstance(doc, dict) or "cases" not in doc:
        raise CaseFormatError("expected a JSON object with 'cases' (Derive SRM case file)", file=str(file),
                              column="cases")
    try:
        _unknown(doc, FILE_KEYS, "case file")
    except CaseFormatError as exc:
        raise CaseFormatError(exc.reason, file=str(file), column=exc.column) from None
    if not isinstance(doc["cases"], list):
        raise CaseFormatError("'cases' must be a list", file=str(file), column="cases")
    return doc


# -------------------------------------------------------------------------------------------- scenario
def _arr(s: dict[str, Any], key: str, n: int | None = None) -> list[Any]:
    v = s.get(key)
    if not isinstance(v, list):
        raise CaseFormatError(f"scenario.{key}: expected a list, got {type(v).__name__}", column=key)
    if n is not None and len(v) != n:
        raise CaseFormatError(f"scenario.{key}: {len(v)} values for {n} options", column=key)
    return v


def scenario_portfolio(s: dict[str, Any]
                       ) -> tuple[SRMPortfolio, dict[str, float], dict[tuple[str, float], float]]:
    """The account of an ``srm_scenario`` case as the exchange's harness builds it.

    Returns
    -------
    (SRMPortfolio, dict, dict)
        The portfolio, the harness's perp figures ``{"UnrealizedPNL", "UnsettledFunding"}`` (USD) and the
        listed ``Forwards`` entry per (market, seconds to expiry) (the last one listed).
    """
    if not isinstance(s, dict):
        raise CaseFormatError("scenario: expected an object", column="scenario")
    _unknown(s, SCENARIO_USED + SCENARIO_UNUSED, "scenario")
    for k in SCENARIO_USED:
        if k not in s:
            raise CaseFormatError(f"scenario: missing key '{k}'", column=k)
    und = _arr(s, "OptionUnderlying")
    n = len(und)
    for u in und:
        if u not in MARKETS:
            raise CaseFormatError(f"scenario.OptionUnderlying: unknown underlying {u!r} (ETH, BTC)",
                                  column="OptionUnderlying")
    lists = {k: _arr(s, k, n) for k in ("OptionExpiries", "OptionStrikes", "OptionIsCall", "OptionAmounts",
                                        "OptionVols", "OptionVolConfidences", "FeedExpiries", "Forwards",
                                        "ForwardConfidences")}
    confs = s["SpotPerpConfidences"]
    if not (isinstance(confs, list) and len(confs) == 2 and all(isinstance(c, list) and len(c) == 2 for c in confs)):
        raise CaseFormatError("scenario.SpotPerpConfidences: expected [[eth spot, eth perp], [btc spot, btc perp]]",
                              column="SpotPerpConfidences")
    perp_px = _arr(s, "PerpPrice", 2)
    # forwards: one per (underlying, expiry), the last set wins; settling expiries take the settlement price
    fwd: dict[tuple[str, float], tuple[float, float]] = {}
    fwd_listed: dict[tuple[str, float], float] = {}
    for i in range(n):
        fwd_listed[(und[i], lists["FeedExpiries"][i])] = lists["Forwards"][i]
        sec = _num(lists["FeedExpiries"][i], f"scenario.FeedExpiries[{i}]")
        price = (_num(s[f"SettlementPrice{und[i]}"], f"scenario.SettlementPrice{und[i]}") if sec < SETTLING_SECONDS
                 else _num(lists["Forwards"][i], f"scenario.Forwards[{i}]"))
        fwd[(und[i], sec)] = (price, _num(lists["ForwardConfidences"][i], f"scenario.ForwardConfidences[{i}]"))
    # vols: one per (underlying, expiry, strike rounded to 1e-8), confidence per (underlying, expiry): last wins
    vols: dict[tuple[str, float, Fraction], float] = {}
    volconf: dict[tuple[str, float], float] = {}
    lines = []
    for i in range(n):
        sec = _num(lists["OptionExpiries"][i], f"scenario.OptionExpiries[{i}]")
        kf = Fraction(repr(float(_num(lists["OptionStrikes"][i], f"scenario.OptionStrikes[{i}]"))))
        kf = Fraction(int(kf * 10**8), 10**8)  # the harness removes dust below 1e-8 (1e10 wei)
        vols[(und[i], sec, kf)] = _num(lists["OptionVols"][i], f"scenario.OptionVols[{i}]")
        volconf[(und[i], sec)] = _num(lists["OptionVolConfidences"][i], f"scenario.OptionVolConfidences[{i}]")
        flag = lists["OptionIsCall"][i]
        if flag not in (0, 1) or isinstance(flag, bool):
            raise CaseFormatError(f"scenario.OptionIsCall[{i}]: expected 1 or 0, got {flag!r}", column="OptionIsCall")
        lines.append((und[i], sec, kf, flag == 1, _num(lists["OptionAmounts"][i], f"scenario.OptionAmounts[{i}]")))
    markets = []
    pnl_total = fund_total = 0.0
    for j, m in enumerate(MARKETS):
        spot = _num(s[f"{m}SpotPrice"], f"scenario.{m}SpotPrice")
        expiries = []
        for sec in dict.fromkeys(ln[1] for ln in lines if ln[0] == m):  # order of first appearance
            if (m, sec) not in fwd:
                raise CaseFormatError(f"scenario: no forward for {m} options expiring in {sec:g} s (FeedExpiries)",
                                      column="FeedExpiries")
            opts = tuple(SRMOption(kk, c, a, vols[(m, sec, kk)]) for u, e, kk, c, a in lines if u == m and e == sec)
            f, fc = fwd[(m, sec)]
            expiries.append(SRMExpiry(sec, f, opts, fc, volconf[(m, sec)]))
        pos = _num(s[f"Perps_{m}"], f"scenario.Perps_{m}")
        unsettled: Any = 0.0
        if pos != 0:
            entry = _num(s[f"LastEntry{m}"], f"scenario.LastEntry{m}")
            glob = _num(s[f"{m}GlobalFundingIndex"], f"scenario.{m}GlobalFundingIndex")
            acc = _num(s[f"Account{m}FundingIndex"], f"scenario.Account{m}FundingIndex")
            pnl = (perp_px[j] - entry) * pos
            funding = -pos * (glob - acc)
            pnl_total += pnl
            fund_total += funding
            unsettled = Fraction(repr(float(perp_px[j]))) - Fraction(repr(float(entry)))
            unsettled = unsettled * Fraction(repr(float(pos))) - Fraction(repr(float(pos))) * (
                Fraction(repr(float(glob))) - Fraction(repr(float(acc))))
        markets.append(SRMMarket(m, spot, confs[j][0], tuple(expiries), pos, perp_px[j], confs[j][1], unsettled,
                                 _num(s[f"w{m}"], f"scenario.w{m}")))
    pf = SRMPortfolio(_num(s["Cash"], "scenario.Cash"), tuple(markets), _num(s["USDCValue"], "scenario.USDCValue"))
    return pf, {"UnrealizedPNL": pnl_total, "UnsettledFunding": fund_total}, fwd_listed


def generator_bounded(pf: SRMPortfolio, fwd_listed: dict[tuple[str, float], float], params: SRMParams
                      ) -> dict[str, float]:
    """The published ``{M}OptionBounded{MM,IM}`` figures of a scenario case.

    They are not a contract figure (the contract keeps the max-loss margin per expiry and sums
    max(isolated, max-loss)): the cases' generator reports the max-loss margin of the market's *last* expiry in
    the order the option lines first list them, with the unpaired-call term on that expiry's ``Forwards`` entry
    (not the settlement price the harness feeds the contract under one hour) and without the contract's cap of
    the worst payoff at 0 (a long box reports +100). Reproduced here so that the published figures can be
    compared; the margin itself never uses it.
    """
    out = {}
    for m in pf.markets:
        for initial, tag in ((False, "MM"), (True, "IM")):
            val = 0.0
            if m.expiries:
                e = m.expiries[-1]
                fwd = fwd_listed.get((m.name, float(e.seconds_to_expiry)), float(e.forward))
                val = bounded_margin(e.options, fwd, params.for_market(m.name).option, initial, cap_at_zero=False)
            out[f"{m.name}OptionBounded{tag}"] = val
    return out


def _components(result: Any, extra: dict[str, float], bounded: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in result.markets:
        out.update({f"{m.name}OptionMM": m.option_mm, f"{m.name}OptionIM": m.option_im,
                    f"{m.name}OptionIsolatedMM": m.isolated_mm, f"{m.name}OptionIsolatedIM": m.isolated_im})
    out.update(bounded)
    out.update({
        "PortfolioMtM": result.mtm, **extra,
        "PerpMargin": sum(m.perp_mm for m in result.markets),
        "OracleConts": sum(m.oracle_im for m in result.markets),
        "DepegIMs": sum(m.depeg_im for m in result.markets),
        "BaseMargin": sum(m.base_mm for m in result.markets),
        "Cash": result.cash, "HandMM": result.mm, "HandIM": result.im, "realMM": result.mm, "realIM": result.im})
    return out


def _run_scenario(case: dict[str, Any], cid: Any, expected: dict[str, Any]) -> CaseResult:
    _unknown(case, CASE_KEYS["srm_scenario"], f"case {cid}")
    require_keys(case, ("scenario", "parameters", "expected"), cid)
    _unknown(expected, ("im", "mm", "mtm", "components"), f"case {cid}: expected")
    tol = _num(case.get("tolerance_rel", DEFAULT_TOLERANCE_REL), f"case {cid}: tolerance_rel")
    params = params_from_dict(case["parameters"])
    pf, extra, fwd_listed = scenario_portfolio(case["scenario"])
    res = derive_srm_margin(pf, params)
    comps = _components(res, extra, generator_bounded(pf, fwd_listed, params))
    exp_comp = expected.get("components", {})
    if not isinstance(exp_comp, dict):
        raise CaseFormatError(f"case {cid}: expected.components must be an object", column="components")
    bad = [k for k in exp_comp if k not in comps]
    if bad:
        raise CaseFormatError(f"case {cid}: unknown component '{bad[0]}' in expected.components", column=bad[0])
    computed: dict[str, Any] = {k: v for k, v in (("im", res.im), ("mm", res.mm), ("mtm", res.mtm)) if k in expected}
    if exp_comp:
        computed["components"] = {k: comps[k] for k in exp_comp}
    # the harness's assertApproxEqRel: |c - e| <= tol x |e| (both zero passes)
    rule = Tolerance("rel", tol, or_abs=1e-9)
    return CaseResult(cid, computed, expected, tolerance=rule,
                      detail={"im_wad": res.im_wad, "mm_wad": res.mm_wad, "mtm_wad": res.mtm_wad})


# ------------------------------------------------------------------------------------------- portfolio
def _fixture(doc: dict[str, Any], case: dict[str, Any], cid: Any) -> dict[str, Any]:
    fx = case.get("fixture")
    if isinstance(fx, dict):
        fixture = fx
    else:
        if "portfolio_fixture" not in doc:
            raise CaseFormatError(f"case {cid}: no portfolio_fixture in the file", column="portfolio_fixture")
        fixture = doc["portfolio_fixture"]
    if not isinstance(fixture, dict):
        raise CaseFormatError("portfolio_fixture: expected an object", column="portfolio_fixture")
    _unknown(fixture, FIXTURE_KEYS, "portfolio_fixture")
    for k in FIXTURE_KEYS[:-1]:
        if k not in fixture:
            raise CaseFormatError(f"portfolio_fixture: missing key '{k}'", column=k)
    return fixture


def _items(pf: dict[str, Any], key: str, known: tuple[str, ...], cid: Any) -> list[dict[str, Any]]:
    v = pf.get(key, [])
    if not isinstance(v, list):
        raise CaseFormatError(f"case {cid}: portfolio.{key} must be a list", column=key)
    for i, it in enumerate(v):
        if not isinstance(it, dict):
            raise CaseFormatError(f"case {cid}: portfolio.{key}[{i}] must be an object", column=key)
        _unknown(it, known, f"case {cid}: portfolio.{key}[{i}]")
        for k in known:
            if k not in it:
                raise CaseFormatError(f"case {cid}: portfolio.{key}[{i}]: missing key '{k}'", column=k)
        if it["underlying"] not in ("eth", "btc"):
            raise CaseFormatError(f"case {cid}: portfolio.{key}[{i}].underlying {it['underlying']!r} (eth, btc)",
                                  column="underlying")
    return v


def portfolio_account(doc: dict[str, Any], case: dict[str, Any], cid: Any) -> SRMPortfolio:
    """The account of an ``srm_portfolio`` case: fixture, then the overrides, then the harness's loading."""
    fixture = _fixture(doc, case, cid)
    pf = case["portfolio"]
    if not isinstance(pf, dict):
        raise CaseFormatError(f"case {cid}: portfolio must be an object", column="portfolio")
    _unknown(pf, PORTFOLIO_KEYS, f"case {cid}: portfolio")
    feeds = Feeds.from_fixture(fixture)
    overrides = case.get("harness_overrides_solidity", [])
    if not isinstance(overrides, list) or not all(isinstance(x, str) for x in overrides):
        raise CaseFormatError(f"case {cid}: harness_overrides_solidity must be a list of statements",
                              column="harness_overrides_solidity")
    apply_overrides(feeds, overrides)
    options = _items(pf, "options", OPTION_KEYS, cid)
    perps = _items(pf, "perps", PERP_KEYS, cid)
    bases = _items(pf, "bases", BASE_KEYS, cid)
    by_expiry: dict[tuple[str, str], list[SRMOption]] = {}
    for i, o in enumerate(options):
        if o["type"] not in ("call", "put"):
            raise CaseFormatError(f"case {cid}: portfolio.options[{i}].type {o['type']!r} (call, put)",
                                  column="type")
        u, date = o["underlying"], o["expiry"]
        if date not in feeds.seconds:
            raise CaseFormatError(f"case {cid}: portfolio.options[{i}].expiry {date!r} is not a fixture expiry",
                                  column="expiry")
        strike = Fraction(repr(float(_num(o["strike"], "strike"))))
        feeds.default_vol(u, date, strike)  # the harness sets vol 0.5 / conf 1 for a strike without a vol
        by_expiry.setdefault((u, date), []).append(
            SRMOption(strike, o["type"] == "call", _num(o["amount"], "amount"), 0.0))
    seen: set[tuple[str, str]] = set()
    for key, items in (("perps", perps), ("bases", bases)):
        for it in items:
            if (key, it["underlying"]) in seen:
                raise CaseFormatError(f"case {cid}: two {key} lines for {it['underlying']} (one balance per asset)",
                                      column=key)
            seen.add((key, it["underlying"]))
    markets = []
    for u in ("eth", "btc"):
        expiries = []
        for (uu, date), opts in by_expiry.items():
            if uu != u:
                continue
            price, conf = feeds.forward(u, date)
            opts_v = tuple(SRMOption(o.strike, o.is_call, o.amount, feeds.vols[(u, date, Fraction(o.strike))])
                           for o in opts)
            expiries.append(SRMExpiry(feeds.seconds[date], price, opts_v, conf, feeds.volconf[(u, date)]))
        perp = next((p for p in perps if p["underlying"] == u), None)
        base = next((b for b in bases if b["underlying"] == u), None)
        perp_price, perp_conf = feeds.perp[u]
        pos = _num(perp["amount"], "amount") if perp else 0.0
        unsettled = ((perp_price - Fraction(repr(float(_num(perp["entryPrice"], "entryPrice")))))
                     * Fraction(repr(float(pos))) if perp else 0)
        spot, spot_conf = feeds.spot[u]
        markets.append(SRMMarket(u.upper(), spot, spot_conf, tuple(expiries), pos, perp_price, perp_conf, unsettled,
                                 _num(base["amount"], "amount") if base else 0.0))
    return SRMPortfolio(_num(pf.get("cash", 0.0), "cash"), tuple(markets), feeds.stable[0])


def _run_portfolio(doc: dict[str, Any], case: dict[str, Any], cid: Any, expected: dict[str, Any]) -> CaseResult:
    _unknown(case, CASE_KEYS["srm_portfolio"], f"case {cid}")
    require_keys(case, ("portfolio", "parameters", "expected"), cid)
    _unknown(expected, ("im", "mm"), f"case {cid}: expected")
    params = params_from_dict(case["parameters"])
    res = derive_srm_margin(portfolio_account(doc, case, cid), params)
    computed = {k: v for k, v in (("im", res.trunc_im), ("mm", res.trunc_mm)) if k in expected}
    return CaseResult(cid, computed, expected, tolerance=Tolerance("exact"),
                      detail={"im": res.im, "mm": res.mm, "mtm": res.mtm})


def run_case(doc: dict[str, Any], case: Any, index: int = 0) -> CaseResult:
    """Run one case of a Derive SRM case file; a malformed or failing case becomes a CaseResult with ``error``.

    Parameters
    ----------
    doc : dict
        The whole case file (its ``portfolio_fixture``).
    case : dict
        One case.
    index : int
        Its position (the id when it has none).

    Returns
    -------
    CaseResult
    """
    if not isinstance(case, dict):
        return CaseResult(index, {}, {}, False, error=f"case {index}: a case must be an object")
    cid = case.get("id", index)
    expected = case.get("expected", {})
    if not isinstance(expected, dict):
        return CaseResult(cid, {}, {}, False, error=f"case {cid}: 'expected' must be an object")

    def compute() -> CaseResult:
        group = case.get("group")
        if group == "srm_scenario":
            return _run_scenario(case, cid, expected)
        if group == "srm_portfolio":
            return _run_portfolio(doc, case, cid, expected)
        raise CaseFormatError(f"case {cid}: unknown group {group!r} (srm_scenario, srm_portfolio)", column="group")

    return run_guarded(cid, expected, compute)


def run(path: Path) -> SuiteResult:
    """Run every case of a Derive SRM case file, or of every such file in a folder.

    Raises
    ------
    CaseFormatError
        The file is not of the format (the message names the file and the key), or a folder holds none.
    """
    files = load_case_files(Path(path), _is_case_file, _check_format,
                            "Derive SRM case file (JSON object with 'cases' of group srm_scenario/srm_portfolio)",
                            "cases")
    cases = [run_case(doc, c, i) for _f, doc in files for i, c in enumerate(doc["cases"])]
    return SuiteResult("derive-srm", cases, source=str(path),
                       tolerance="srm_scenario: im, mm, mtm, components within tolerance_rel (0.1 %) relative; "
                                 "srm_portfolio: trunc(im), trunc(mm) equal the expected whole USD")
