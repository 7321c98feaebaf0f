"""The market of Derive's standard-manager portfolio tests and the Solidity statements that change it.

The exchange's portfolio tests (derivexyz/v2-core @ 7736900, TestStandardManager_Portfolio_Cases.t.sol with
TestCaseExpiries.t.sol) run on mock feeds: a spot and confidence per underlying, a forward and confidence per
(underlying, expiry), a vol per (underlying, expiry, strike) and one vol confidence per (underlying, expiry)
that the *last* ``setVol`` of that expiry sets, a perp price and confidence, a stable (USDC) price. Some tests
change them before the portfolio is loaded; the case file gives those statements verbatim
(``harness_overrides_solidity``). :func:`apply_overrides` interprets the feed setters of that harness and refuses
any statement it cannot interpret (a :class:`~greeksmargin.errors.CaseFormatError` quoting it).

Interpreted: ``uint64 NAME = uint64(dateToExpiry["YYYYMMDD"]);`` (a local expiry variable);
``{eth,btc}Feed.setSpot(price, conf)``, ``.setForwardPrice(expiry, price, conf)``, ``.setVol(expiry, strike,
vol, conf)``, ``.setVolConfidence(expiry, conf)``, ``.setForwardPricePortions(expiry, fixed, variable,
conf)`` (forward = fixed + variable, as the mock returns it), ``.setInterestRate`` /
``.setSettlementPrice`` (accepted: the standard manager's margin reads neither); ``stableFeed.setSpot(price, conf)``;
``{eth,btc}Perp.setMockPerpPrice(price, conf)``. Arguments are 18-decimal integer expressions (``2000e18``,
``ethDefaultPrice + 4.75e18``, ``0.4e18 - 1``, ``uint64(dateToExpiry["..."])``) evaluated exactly; ``//``
comments are dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from greeksmargin.errors import CaseFormatError

__all__ = ["Expiry", "Feeds", "apply_overrides", "evaluate"]

WAD = 10**18
#: constants of TestCaseExpiries.t.sol (18 decimals)
CONSTANTS = {"ethDefaultPrice": 2000 * WAD, "btcDefaultPrice": 28000 * WAD}


@dataclass(frozen=True)
class Expiry:
    """An expiry named by its fixture date (``"20230118"``)."""

    date: str


@dataclass
class Feeds:
    """The mock feeds of the portfolio tests (prices in USD, confidences in [0, 1], exact fractions)."""

    seconds: dict[str, float]
    spot: dict[str, tuple[Fraction, Fraction]]
    forwards: dict[tuple[str, str], tuple[Fraction, Fraction]]
    perp: dict[str, tuple[Fraction, Fraction]]
    stable: tuple[Fraction, Fraction]
    default_vol_conf: tuple[Fraction, Fraction]
    vols: dict[tuple[str, str, Fraction], Fraction] = field(default_factory=dict)
    volconf: dict[tuple[str, str], Fraction] = field(default_factory=dict)

    @classmethod
    def from_fixture(cls, fx: dict[str, Any]) -> Feeds:
        """Feeds of the ``portfolio_fixture`` (spot / forwards / perp marks at confidence ``default_confidence``)."""
        def q(v: Any, where: str) -> Fraction:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise CaseFormatError(f"portfolio_fixture.{where}: expected a number, got {v!r}", column=where)
            return Fraction(repr(float(v)))

        conf = q(fx["default_confidence"], "default_confidence")
        und = ("eth", "btc")
        for key in ("spot", "perp_mark"):
            if not isinstance(fx[key], dict) or set(fx[key]) != set(und):
                raise CaseFormatError(f"portfolio_fixture.{key}: expected {{eth, btc}}", column=key)
        seconds, forwards = {}, {}
        if not isinstance(fx["expiries"], dict):
            raise CaseFormatError("portfolio_fixture.expiries: expected an object of dates", column="expiries")
        for date, e in fx["expiries"].items():
            if not isinstance(e, dict) or set(e) != {"seconds_to_expiry", "forward"}:
                raise CaseFormatError(f"portfolio_fixture.expiries.{date}: expected seconds_to_expiry and forward",
                                      column=date)
            seconds[date] = float(q(e["seconds_to_expiry"], f"expiries.{date}.seconds_to_expiry"))
            if not isinstance(e["forward"], dict) or set(e["forward"]) != set(und):
                raise CaseFormatError(f"portfolio_fixture.expiries.{date}.forward: expected {{eth, btc}}",
                                      column="forward")
            for u in und:
                forwards[(u, date)] = (q(e["forward"][u], f"expiries.{date}.forward.{u}"), conf)
        return cls(seconds, {u: (q(fx["spot"][u], f"spot.{u}"), conf) for u in und}, forwards,
                   {u: (q(fx["perp_mark"][u], f"perp_mark.{u}"), conf) for u in und},
                   (q(fx["usdc_price"], "usdc_price"), Fraction(1)),
                   (q(fx["default_vol"], "default_vol"), conf))

    def forward(self, u: str, date: str) -> tuple[Fraction, Fraction]:
        """Forward price and confidence of (underlying, expiry)."""
        return self.forwards[(u, date)]

    def set_vol(self, u: str, date: str, strike: Fraction, vol: Fraction, conf: Fraction) -> None:
        """``setVol``: the strike's vol and the expiry's (single) vol confidence."""
        self.vols[(u, date, strike)] = vol
        self.volconf[(u, date)] = conf

    def default_vol(self, u: str, date: str, strike: Fraction) -> None:
        """The harness's loading step: a strike without a vol gets ``default_vol`` at ``default_confidence``."""
        if (u, date, strike) not in self.vols:
            self.set_vol(u, date, strike, *self.default_vol_conf)


# ------------------------------------------------------------------------------------------ expressions
_TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d+)?(?:e\d+)?)|(?P<str>\"[^\"]*\")|(?P<id>[A-Za-z_][A-Za-z0-9_]*)"
                    r"|(?P<op>[-+*/()\[\],]))")


def _tokens(text: str, stmt: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise CaseFormatError(f"cannot interpret harness statement {stmt!r} (at {text[pos:]!r})",
                                  column="harness_overrides_solidity")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, toks: list[tuple[str, str]], env: dict[str, Any], stmt: str) -> None:
        self.toks, self.i, self.env, self.stmt = toks, 0, env, stmt

    def fail(self, why: str) -> CaseFormatError:
        return CaseFormatError(f"cannot interpret harness statement {self.stmt!r}: {why}",
                               column="harness_overrides_solidity")

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        t = self.peek()
        if t is None or (value is not None and t[1] != value):
            raise self.fail(f"expected {value or 'more'}")
        self.i += 1
        return t

    def expr(self) -> Any:
        v = self.term()
        while (t := self.peek()) and t[1] in "+-" and t[0] == "op":
            self.take()
            r = self.term()
            if isinstance(v, Expiry) or isinstance(r, Expiry):
                raise self.fail("arithmetic on an expiry")
            v = v + r if t[1] == "+" else v - r
        return v

    def term(self) -> Any:
        v = self.atom()
        while (t := self.peek()) and t[1] in "*/" and t[0] == "op":
            self.take()
            r = self.atom()
            if isinstance(v, Expiry) or isinstance(r, Expiry):
                raise self.fail("arithmetic on an expiry")
            if t[1] == "/" and r == 0:
                raise self.fail("division by zero")
            v = v * r if t[1] == "*" else Fraction(int(Fraction(v) / r))  # Solidity integer division
        return v

    def atom(self) -> Any:
        kind, text = self.take()
        if kind == "num":
            v = Fraction(text.split("e")[0]) * (10 ** int(text.split("e")[1]) if "e" in text else 1)
            if v.denominator != 1:
                raise self.fail(f"{text} is not an integer literal")
            return v
        if text == "(":
            v = self.expr()
            self.take(")")
            return v
        if text == "-":
            return -self.atom()
        if kind == "id":
            if text in ("uint64", "uint128", "uint256", "uint", "int256", "int"):
                self.take("(")
                v = self.expr()
                self.take(")")
                return v
            if text == "dateToExpiry":
                self.take("[")
                k, s = self.take()
                if k != "str":
                    raise self.fail("dateToExpiry needs a date string")
                self.take("]")
                return Expiry(s.strip('"'))
            if text in CONSTANTS:
                return Fraction(CONSTANTS[text])
            if text in self.env:
                return self.env[text]
        raise self.fail(f"unknown name {text!r}")

    def args(self) -> list[Any]:
        self.take("(")
        out = [self.expr()]
        while self.peek() and self.peek()[1] == ",":  # type: ignore[index]
            self.take(",")
            out.append(self.expr())
        self.take(")")
        if self.peek() is not None:
            raise self.fail("trailing text")
        return out


_CALL = re.compile(r"^(?P<obj>ethFeed|btcFeed|stableFeed|ethPerp|btcPerp)\.(?P<fn>\w+)(?P<args>\(.*\))$")
_DECL = re.compile(r"^uint(?:64|128|256)?\s+(?P<name>[A-Za-z_]\w*)\s*=\s*(?P<rhs>.+)$")


def evaluate(text: str, env: dict[str, Any], stmt: str = "") -> Any:
    """Value of a Solidity integer expression (an exact Fraction in wei, or an :class:`Expiry`)."""
    p = _Parser(_tokens(text, stmt or text), env, stmt or text)
    v = p.expr()
    if p.peek() is not None:
        raise p.fail("trailing text")
    return v


def _wad_of(p: _Parser) -> Any:
    def wad(v: Any, what: str) -> Fraction:
        if isinstance(v, Expiry):
            raise p.fail(f"{what} must be a number")
        return Fraction(v) / WAD
    return wad


def _expiry_of(p: _Parser, feeds: Feeds) -> Any:
    def expiry(v: Any) -> str:
        if not isinstance(v, Expiry):
            raise p.fail("the expiry argument must be dateToExpiry[...] or a variable holding it")
        if v.date not in feeds.seconds:
            raise p.fail(f"expiry {v.date} is not in the fixture")
        return v.date
    return expiry


def apply_overrides(feeds: Feeds, statements: list[str]) -> None:
    """Apply the harness's Solidity statements to ``feeds`` (see the module docstring).

    Raises
    ------
    CaseFormatError
        A statement that is not one of the interpreted forms, an unknown expiry date or name, a wrong argument.
    """
    env: dict[str, Any] = {}
    for raw in statements:
        stmt = raw.split("//", 1)[0].strip()
        if not stmt:
            continue
        if not stmt.endswith(";"):
            raise CaseFormatError(f"cannot interpret harness statement {raw!r}: no ';'",
                                  column="harness_overrides_solidity")
        stmt = stmt[:-1].strip()
        d = _DECL.match(stmt)
        if d:
            env[d.group("name")] = evaluate(d.group("rhs"), env, raw)
            continue
        c = _CALL.match(stmt)
        if not c:
            raise CaseFormatError(f"cannot interpret harness statement {raw!r}", column="harness_overrides_solidity")
        p = _Parser(_tokens(c.group("args"), raw), env, raw)
        args = p.args()
        obj, fn = c.group("obj"), c.group("fn")

        sig = {("Feed", "setSpot"): 2, ("Feed", "setForwardPrice"): 3, ("Feed", "setVol"): 4,
               ("Feed", "setVolConfidence"): 2, ("Feed", "setForwardPricePortions"): 4,
               ("Feed", "setInterestRate"): 3, ("Feed", "setSettlementPrice"): 2, ("Perp", "setMockPerpPrice"): 2}
        kind = "Feed" if obj.endswith("Feed") else "Perp"
        if (kind, fn) not in sig or (obj == "stableFeed" and fn != "setSpot"):
            raise p.fail(f"{obj}.{fn} is not a feed setter the product interprets")
        if len(args) != sig[(kind, fn)]:
            raise p.fail(f"{obj}.{fn} takes {sig[(kind, fn)]} arguments")
        u = obj[:3]
        wad, expiry = _wad_of(p), _expiry_of(p, feeds)
        if obj == "stableFeed":
            feeds.stable = (wad(args[0], "price"), wad(args[1], "confidence"))
        elif fn == "setSpot":
            feeds.spot[u] = (wad(args[0], "price"), wad(args[1], "confidence"))
        elif fn == "setForwardPrice":
            feeds.forwards[(u, expiry(args[0]))] = (wad(args[1], "price"), wad(args[2], "confidence"))
        elif fn == "setVol":
            feeds.set_vol(u, expiry(args[0]), wad(args[1], "strike"), wad(args[2], "vol"), wad(args[3], "confidence"))
        elif fn == "setForwardPricePortions":  # MockFeeds: forward = fixed portion + variable portion
            fixed, variable = wad(args[1], "fixed portion"), wad(args[2], "price")
            feeds.forwards[(u, expiry(args[0]))] = (fixed + variable, wad(args[3], "confidence"))
        elif fn in ("setInterestRate", "setSettlementPrice"):
            expiry(args[0])  # the standard manager's margin reads neither rates nor settlement prices
            for a in args[1:]:
                wad(a, "value")
        elif fn == "setVolConfidence":
            feeds.volconf[(u, expiry(args[0]))] = wad(args[1], "confidence")
        else:
            feeds.perp[u] = (wad(args[0], "price"), wad(args[1], "confidence"))
