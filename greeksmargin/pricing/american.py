"""American vanilla options: Barone-Adesi-Whaley (1987) and Bjerksund-Stensland (1993, 2002), vectorised.

Model: generalised Black-Scholes-Merton on the spot ``S``, continuous rate ``r`` and dividend yield ``q``,
cost of carry ``b = r - q`` (Haug 2007, ch. 3). Every function takes numpy arrays (broadcasting) and returns
arrays of the broadcast shape. Units as in :mod:`greeksmargin.pricing.black`: vega per 1.00 of vol, theta
per year (value change as calendar time passes, ``-dV/dT``), rho and dividend rho per 1.00 of rate.

Where early exercise matters. By the no-arbitrage bounds ``C >= S e^(-qT) - K e^(-rT)`` and its put twin:

- a call is never exercised early when ``q <= 0`` and ``r >= q`` (then American = European, priced by
  BSM); a put when ``r <= 0`` and ``q >= r``;
- a call with ``q > 0`` and a put with ``r > 0`` have one early-exercise boundary: the approximations apply;
- a call with ``q <= 0`` and ``r < q``, and a put with ``r <= 0`` and ``q < r`` (negative rates) can have two
  boundaries (Battauz, De Donno and Sbuelz 2015), which the single-boundary approximations do not cover:
  those options raise :class:`~greeksmargin.errors.ComputationError` naming the option (price them with
  :func:`greeksmargin.pricing.lattice.lattice_price`).

Methods (``method=``):

- ``"baw"``: Barone-Adesi and Whaley (1987), quadratic approximation; the critical price solves
  ``S* - K = c(S*) + (1 - e^((b-r)T) N(d1(S*))) S*/q2`` (call; put analogue) by the Newton iteration of
  Haug (2007, sec. 3.3.1), vectorised over options, seeded as there and safeguarded by a sign bracket
  (call ``[K, hi]``, put ``[1e-12 K, K]``; a step leaving it is replaced by the midpoint: the put equation
  is not monotone at low vol, where plain Newton runs away); it stops when ``|LHS - RHS| <= 1e-12 max(K, S)``
  and raises :class:`~greeksmargin.errors.ComputationError` naming the options without a sign change or not
  converged within 200 steps (never a silent NaN). ``r = 0`` uses the limit
  ``2r / (sigma^2 (1 - e^(-rT))) -> 2 / (sigma^2 T)``. An early-exercise premium provably below 1e-14 of S
  (call, ``S (1 - e^(-qT))``) or K (put, ``K (1 - e^(-rT))``) is dropped (European value): the critical price
  runs beyond double precision there.
- ``"bs2002"``: Bjerksund and Stensland (2002), two-step flat boundary (``t1 = (sqrt 5 - 1) T / 2``): ``I2``
  on ``[0, t1]`` from ``h(T)``, ``I1`` on ``[t1, T]`` from ``h(T - t1)``, the remaining life of that period
  (this reproduces the published BS2002 table asserted by google/tf-quant-finance's test suite to its two
  decimals on all 80 values; ``h(t1)``, as written in some implementations, misses it by up to 0.015), with
  ``h(t) = -(b t + 2 sigma sqrt t) K^2 / ((B_inf - B_0) B_0)`` and the bivariate normal CDF of
  :func:`bivariate_normal_cdf`; puts through the put-call transformation ``P(S, K, T, r, b) = C(K, S, T,
  r - b, -b)``.
- ``"bs1993"``: Bjerksund and Stensland (1993), one flat boundary (the engine of Haug's 1998 VBA code and of
  QuantLib's ``BjerksundStenslandApproximationEngine``); a lower bound, below ``"bs2002"``.

Greeks of American options (:func:`american_greeks`) are central finite differences of the vectorised
price with the bumps of :data:`BUMPS`; the BAW critical price does not depend on ``S``, so delta and gamma
reuse it (no Newton noise in them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import log_ndtr, ndtr

from ..errors import ComputationError
from ._common import INV_SQRT_2PI, as_float, check_positive, is_call_array
from ._common import checked_flat_inputs as _checked
from .black import black_scholes_merton, bsm_price

__all__ = [
    "AMERICAN_METHODS",
    "BUMPS",
    "VanillaGreeks",
    "american_greeks",
    "american_price",
    "bivariate_normal_cdf",
    "early_exercise_regime",
    "parse_exercise",
    "price_vanilla",
    "vanilla_greeks",
]

Method = Literal["baw", "bs2002", "bs1993"]
AMERICAN_METHODS: tuple[str, ...] = ("baw", "bs2002", "bs1993")
#: finite-difference bumps of :func:`american_greeks`: spot relative (h = 1e-4 S), vol, time (years), rate and
#: dividend yield absolute; all central differences (time one-sided forward when T < 2e-4)
BUMPS: dict[str, float] = {"spot_rel": 1e-4, "vol": 1e-4, "time": 1e-4, "rate": 1e-4, "dividend_yield": 1e-4}
NEWTON_TOL = 1e-12
NEWTON_MAX_ITER = 200
#: early-exercise premium bound (relative to S for calls, K for puts) below which American = European
NEGLIGIBLE = 1e-14

# Gauss-Legendre nodes/weights on [-1, 1] for the bivariate normal (20 points: Genz 2004 for |rho| < 0.925)
_GL_X, _GL_W = np.polynomial.legendre.leggauss(20)


@dataclass(frozen=True)
class VanillaGreeks:
    """Price and Greeks of vanilla options (European or American); each attribute an ndarray of one shape.

    Attributes
    ----------
    price : ndarray
        Option value (currency of the strike).
    delta : ndarray
        dV/dS.
    gamma : ndarray
        d2V/dS2.
    vega : ndarray
        dV/dsigma per 1.00 of vol.
    theta : ndarray
        dV/dt per year as calendar time passes (``-dV/dT``).
    rho : ndarray
        dV/dr per 1.00 of rate (S and q fixed).
    dividend_rho : ndarray
        dV/dq per 1.00 of dividend yield (S and r fixed).
    """

    price: NDArray[np.float64]
    delta: NDArray[np.float64]
    gamma: NDArray[np.float64]
    vega: NDArray[np.float64]
    theta: NDArray[np.float64]
    rho: NDArray[np.float64]
    dividend_rho: NDArray[np.float64]


# ------------------------------------------------------------------------------------------------ inputs
def early_exercise_regime(option_type: ArrayLike, rate: ArrayLike, dividend_yield: ArrayLike) -> NDArray[np.str_]:
    """Which regime of early exercise each option is in (see the module docstring).

    Parameters
    ----------
    option_type : str, bool or array_like
        Calls and puts.
    rate, dividend_yield : array_like
        Continuous r and q.

    Returns
    -------
    ndarray of str
        ``"european"`` (early exercise never optimal: American = European), ``"single"`` (one boundary:
        the approximations apply) or ``"double"`` (negative rates, possibly two boundaries: not covered),
        of the broadcast shape.
    """
    call = is_call_array(option_type)
    r = as_float("rate", rate)
    q = as_float("dividend_yield", dividend_yield)
    call, r, q = np.broadcast_arrays(call, r, q)
    euro = np.where(call, (q <= 0.0) & (r >= q), (r <= 0.0) & (q >= r))
    single = np.where(call, q > 0.0, r > 0.0)
    return np.where(euro, "european", np.where(single, "single", "double"))


# ---------------------------------------------------------------------------------------- normal CDFs
def bivariate_normal_cdf(a: ArrayLike, b: ArrayLike, rho: ArrayLike) -> NDArray[np.float64]:
    """Standard bivariate normal CDF ``M(a, b; rho) = P(X <= a, Y <= b)``, vectorised, for ``|rho| <= 0.925``.

    Drezner-Wesolowsky / Genz (2004) form: ``N(a) N(b) + (1/2pi) int_0^asin(rho) exp(-(a^2 + b^2 -
    2ab sin t) / (2 cos^2 t)) dt`` by 20-point Gauss-Legendre (double precision for ``|rho| < 0.925``, Genz's
    range for this rule; Bjerksund-Stensland 2002 uses ``|rho| = sqrt((sqrt 5 - 1)/2) = 0.786``).

    Parameters
    ----------
    a, b : array_like
        Upper limits (may be +-inf).
    rho : array_like
        Correlation, ``|rho| <= 0.925``.

    Returns
    -------
    ndarray of float64
        Probabilities of the broadcast shape.

    Raises
    ------
    ValueError
        If ``|rho| > 0.925`` or a value is NaN.
    """
    a_, b_, r_ = np.broadcast_arrays(as_float("a", a), as_float("b", b), as_float("rho", rho))
    if np.any(np.isnan(a_)) or np.any(np.isnan(b_)) or np.any(~(np.abs(r_) <= 0.925)):
        raise ValueError("bivariate_normal_cdf: needs non-NaN limits and |rho| <= 0.925")
    # clip infinite limits: N(+-40) is 1/0 and the integrand underflows to 0 there
    h = np.clip(a_, -40.0, 40.0)[..., None]
    k = np.clip(b_, -40.0, 40.0)[..., None]
    asr = np.arcsin(r_)[..., None]
    sn = np.sin(asr * (_GL_X + 1.0) / 2.0)
    integrand = np.exp((sn * h * k - (h * h + k * k) / 2.0) / (1.0 - sn * sn))
    integral = (asr[..., 0] / (4.0 * np.pi)) * np.sum(_GL_W * integrand, axis=-1)
    # rounding can leave a far-tail value a few 1e-17 below 0: a probability is clipped to [0, 1]
    return np.asarray(np.clip(ndtr(a_) * ndtr(b_) + integral, 0.0, 1.0), dtype=np.float64)


# ---------------------------------------------------------------------------------------------- BAW
def _baw_coefficient(w: NDArray[np.float64], t: NDArray[np.float64], v: NDArray[np.float64],
                     r: NDArray[np.float64], q: NDArray[np.float64]) -> NDArray[np.float64]:
    """q2 (calls, > 1) or q1 (puts, < 0) of BAW: roots of ``x^2 + (N - 1) x - M/K = 0``."""
    v2 = v * v
    nn = 2.0 * (r - q) / v2
    rt = r * t
    with np.errstate(divide="ignore", invalid="ignore"):
        mk = np.where(np.abs(rt) > 1e-12, 2.0 * r / (v2 * -np.expm1(-rt)), 2.0 / (v2 * t))
    return (-(nn - 1.0) + w * np.sqrt((nn - 1.0) ** 2 + 4.0 * mk)) / 2.0


def _baw_gap(w: NDArray[np.float64], si: NDArray[np.float64], k: NDArray[np.float64], t: NDArray[np.float64],
             v: NDArray[np.float64], r: NDArray[np.float64], q: NDArray[np.float64],
             qq: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``G = w (LHS - RHS)`` of the BAW critical-price equation at ``si`` and its slope ``dG/dS``.

    Call: ``LHS = S - K``, ``RHS = c(S) + (1 - e^(-qT) N(d1)) S / q2``; put: ``LHS = K - S``,
    ``RHS = p(S) - (1 - e^(-qT) N(-d1)) S / q1``. ``G`` is < 0 below the critical price and > 0 above it
    (inside the bracket of :func:`_baw_critical`).
    """
    sq = v * np.sqrt(t)
    ebr = np.exp(-q * t)  # e^((b - r) T)
    d1 = (np.log(si / k) + (r - q + 0.5 * v * v) * t) / sq
    euro = bsm_price(w > 0, si, k, t, v, r, q)
    nd1 = ndtr(w * d1)
    pdf = INV_SQRT_2PI * np.exp(-0.5 * d1 * d1)
    lhs = w * (si - k)
    rhs = euro + w * (1.0 - ebr * nd1) * si / qq
    # dRHS/dS = w (ebr N(w d1) (1 - 1/q) + (1 - w ebr n(d1) / (sigma sqrt T)) / q); dLHS/dS = w
    slope = w * (ebr * nd1 * (1.0 - 1.0 / qq) + (1.0 - w * ebr * pdf / sq) / qq)
    return w * (lhs - rhs), w * (w - slope)


def _baw_critical(w: NDArray[np.float64], k: NDArray[np.float64], t: NDArray[np.float64],
                  v: NDArray[np.float64], r: NDArray[np.float64], q: NDArray[np.float64]) -> NDArray[np.float64]:
    """Critical price of BAW by a vectorised Newton iteration safeguarded by a sign bracket.

    ``G`` (:func:`_baw_gap`) is < 0 on the low side of the critical price and > 0 on the high side. Bracket:
    call ``[K, hi]`` with ``hi`` doubled from ``2K`` until ``G(hi) > 0``; put ``[1e-12 K, K]``. Newton starts
    from Haug's (2007) seed when it lies inside the bracket (its midpoint otherwise); a step that leaves the
    bracket is replaced by the midpoint, and the bracket shrinks with the sign of ``G`` at every iterate. Stops
    when ``|G| <= 1e-12 max(K, S)`` or the bracket is 1e-15 of its end; no sign change at the bracket's ends,
    or no convergence in :data:`NEWTON_MAX_ITER` steps, raises :class:`ComputationError` naming the options.
    """
    call = w > 0
    qq = _baw_coefficient(w, t, v, r, q)
    neg = np.where(call, k, 1e-12 * k)  # G < 0 here
    pos = np.where(call, 2.0 * k, k)  # G > 0 here (the call's end is grown below)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        g_pos, _ = _baw_gap(w, pos, k, t, v, r, q, qq)
        g_neg, _ = _baw_gap(w, neg, k, t, v, r, q, qq)
        grow = call & ~(g_pos > 0.0)
        for _ in range(1100):  # double the call's upper end (the critical price grows like 1/q)
            if not np.any(grow):
                break
            pos[grow] *= 2.0
            g_pos[grow], _ = _baw_gap(w[grow], pos[grow], k[grow], t[grow], v[grow], r[grow], q[grow], qq[grow])
            grow = call & ~(g_pos > 0.0) & np.isfinite(pos)
        # Haug's seed: the perpetual critical price (M instead of M/K) pulled towards K
        b, sq, v2 = r - q, v * np.sqrt(t), v * v
        nn = 2.0 * b / v2
        q_inf = (-(nn - 1.0) + w * np.sqrt((nn - 1.0) ** 2 + 8.0 * r / v2)) / 2.0
        s_inf = k / (1.0 - 1.0 / q_inf)
        seed = np.where(call, k + (s_inf - k) * -np.expm1(-(b * t + 2.0 * sq) * k / (s_inf - k)),
                        s_inf + (k - s_inf) * np.exp((b * t - 2.0 * sq) * k / (k - s_inf)))
    bad = ~(g_pos > 0.0) | ~(g_neg < 0.0)
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise ComputationError(
            f"Barone-Adesi-Whaley: no sign change of the critical-price equation for {int(np.count_nonzero(bad))} "
            f"option(s), first: strike={float(k[i])!r}, time_to_expiry={float(t[i])!r}, vol={float(v[i])!r}, "
            f"rate={float(r[i])!r}, dividend_yield={float(q[i])!r}")
    lo, hi = np.minimum(neg, pos), np.maximum(neg, pos)
    si = np.where(np.isfinite(seed) & (seed > lo) & (seed < hi), seed, 0.5 * (lo + hi))
    active = np.arange(si.shape[0])
    for _ in range(NEWTON_MAX_ITER):
        a = active
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            g, dg = _baw_gap(w[a], si[a], k[a], t[a], v[a], r[a], q[a], qq[a])
        s_a = si[a]
        n_a, p_a = neg[a], pos[a]
        n_a = np.where(g < 0.0, s_a, n_a)
        p_a = np.where(g > 0.0, s_a, p_a)
        neg[a], pos[a] = n_a, p_a
        conv = (np.abs(g) <= NEWTON_TOL * np.maximum(k[a], s_a)) | (
            np.abs(p_a - n_a) <= 1e-15 * np.maximum(np.abs(p_a), np.abs(n_a)))
        with np.errstate(divide="ignore", invalid="ignore"):
            new = s_a - g / dg
        lo, hi = np.minimum(n_a, p_a), np.maximum(n_a, p_a)
        inside = np.isfinite(new) & (new > lo) & (new < hi)
        new = np.where(inside, new, 0.5 * (lo + hi))
        si[a] = np.where(conv, s_a, new)
        active = a[~conv]
        if active.size == 0:
            return si
    i = int(active[0])
    raise ComputationError(
        f"Barone-Adesi-Whaley: critical price did not converge in {NEWTON_MAX_ITER} Newton steps for "
        f"{active.size} option(s), first: strike={float(k[i])!r}, time_to_expiry={float(t[i])!r}, "
        f"vol={float(v[i])!r}, rate={float(r[i])!r}, dividend_yield={float(q[i])!r}")


def _baw_price_at(w: NDArray[np.float64], s: NDArray[np.float64], k: NDArray[np.float64],
                  t: NDArray[np.float64], v: NDArray[np.float64], r: NDArray[np.float64], q: NDArray[np.float64],
                  crit: NDArray[np.float64]) -> NDArray[np.float64]:
    """BAW price at spot ``s`` given the critical price ``crit`` (single-boundary options)."""
    qq = _baw_coefficient(w, t, v, r, q)
    sq = v * np.sqrt(t)
    d1 = (np.log(crit / k) + (r - q + 0.5 * v * v) * t) / sq
    amp = w * (crit / qq) * (1.0 - np.exp(-q * t) * ndtr(w * d1))
    euro = bsm_price(w > 0, s, k, t, v, r, q)
    cont = euro + amp * (s / crit) ** qq
    exercised = np.where(w > 0, s >= crit, s <= crit)
    return np.where(exercised, w * (s - k), cont)


# ------------------------------------------------------------------------------ Bjerksund-Stensland
def _bs_phi(s: NDArray[np.float64], t: NDArray[np.float64], gamma: NDArray[np.float64] | float,
            h: NDArray[np.float64], i: NDArray[np.float64], r: NDArray[np.float64], b: NDArray[np.float64],
            v: NDArray[np.float64], log_scale: NDArray[np.float64] | float = 0.0) -> NDArray[np.float64]:
    """``exp(log_scale) phi(S, T, gamma, H, I)`` of Bjerksund-Stensland (Haug 2007, eq. 3.5), in log space.

    ``phi = e^(lambda T) S^gamma [N(d1) - (I/S)^kappa N(d2)]``; each term is one ``exp`` of a sum of logs
    (``log_ndtr`` for the normal CDF), so that the large powers of small vols neither overflow nor lose the
    tails (``0 * inf`` cannot occur).
    """
    v2 = v * v
    sq = v * np.sqrt(t)
    lam = (-r + gamma * b + 0.5 * gamma * (gamma - 1.0) * v2) * t
    kappa = 2.0 * b / v2 + (2.0 * gamma - 1.0)
    drift = (b + (gamma - 0.5) * v2) * t
    d1 = -(np.log(s / h) + drift) / sq
    d2 = -(np.log(i * i / (s * h)) + drift) / sq
    base = log_scale + lam + gamma * np.log(s)
    return np.exp(base + log_ndtr(d1)) - np.exp(base + kappa * np.log(i / s) + log_ndtr(d2))


def _bs_psi(s: NDArray[np.float64], t: NDArray[np.float64], gamma: NDArray[np.float64] | float,
            h: NDArray[np.float64], i2: NDArray[np.float64], i1: NDArray[np.float64], t1: NDArray[np.float64],
            r: NDArray[np.float64], b: NDArray[np.float64], v: NDArray[np.float64],
            log_scale: NDArray[np.float64] | float = 0.0) -> NDArray[np.float64]:
    """``exp(log_scale) psi(S, T, gamma, H, I2, I1, t1)`` of Bjerksund-Stensland 2002 (Haug 2007, sec. 3.3.3)."""
    v2 = v * v
    s1 = v * np.sqrt(t1)
    s2 = v * np.sqrt(t)
    lam = -r + gamma * b + 0.5 * gamma * (gamma - 1.0) * v2
    kappa = 2.0 * b / v2 + (2.0 * gamma - 1.0)
    mu = b + (gamma - 0.5) * v2
    e1 = (np.log(s / i1) + mu * t1) / s1
    e2 = (np.log(i2 * i2 / (s * i1)) + mu * t1) / s1
    e3 = (np.log(s / i1) - mu * t1) / s1
    e4 = (np.log(i2 * i2 / (s * i1)) - mu * t1) / s1
    f1 = (np.log(s / h) + mu * t) / s2
    f2 = (np.log(i2 * i2 / (s * h)) + mu * t) / s2
    f3 = (np.log(i1 * i1 / (s * h)) + mu * t) / s2
    f4 = (np.log(s * i1 * i1 / (h * i2 * i2)) + mu * t) / s2
    rho = np.sqrt(t1 / t)
    base = log_scale + lam * t + gamma * np.log(s)

    def term(log_power: NDArray[np.float64] | float, a: NDArray[np.float64], c: NDArray[np.float64],
             corr: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.exp(base + log_power + np.log(bivariate_normal_cdf(a, c, corr)))

    return (term(0.0, -e1, -f1, rho) - term(kappa * np.log(i2 / s), -e2, -f2, rho)
            - term(kappa * np.log(i1 / s), -e3, -f3, -rho) + term(kappa * np.log(i1 / i2), -e4, -f4, -rho))


def _bs_call(s: NDArray[np.float64], k: NDArray[np.float64], t: NDArray[np.float64], v: NDArray[np.float64],
             r: NDArray[np.float64], b: NDArray[np.float64], version: str) -> NDArray[np.float64]:
    """Bjerksund-Stensland American call with carry ``b < r`` (dividend ``r - b > 0``).

    ``alpha S^beta`` terms are evaluated as ``(I - K) (S/I)^beta`` and ``alpha phi(beta, ...)`` with the log of
    ``alpha`` inside phi's exponent (no overflow of ``S^beta`` at small vols). Where the boundary runs off to
    infinity in double precision (dividend -> 0: ``beta -> 1``, ``r / (r - b)`` overflows) the value is -inf,
    so that the caller's floor returns the European value, the limit. When ``b t + 2 sigma sqrt(t) < 0`` (low
    vol, negative carry) the published ``h(t)`` is positive and would put the flat boundary below ``B_0``, the
    boundary at expiry (below K for ``B_0 = K``: exercise at a loss); ``h`` is capped at 0, i.e. the boundary at
    ``B_0``, still an exercise strategy, so the value stays a lower bound.
    """
    v2 = v * v
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        beta = (0.5 - b / v2) + np.sqrt((b / v2 - 0.5) ** 2 + 2.0 * r / v2)
        b_inf = beta / (beta - 1.0) * k
        b_0 = np.maximum(k, r / (r - b) * k)
    ok = np.isfinite(b_inf) & np.isfinite(b_0) & (b_inf > b_0)
    if not np.all(ok):
        out = np.full(s.shape, -np.inf)
        if np.any(ok):
            out[ok] = _bs_call(s[ok], k[ok], t[ok], v[ok], r[ok], b[ok], version)
        return out
    spread = b_inf - b_0
    log_k = np.log(k)
    if version == "bs1993":
        h_t = np.minimum(-(b * t + 2.0 * v * np.sqrt(t)) * b_0 / spread, 0.0)  # boundary >= B_0 (docstring)
        bound = b_0 + spread * -np.expm1(h_t)
        log_alpha = np.log(bound - k) - beta * np.log(bound)

        def phi93(g: NDArray[np.float64] | float, h: NDArray[np.float64],
                  ls: NDArray[np.float64] | float = 0.0) -> NDArray[np.float64]:
            return _bs_phi(s, t, g, h, bound, r, b, v, ls)

        value = ((bound - k) * np.exp(beta * np.log(s / bound)) - phi93(beta, bound, log_alpha)
                 + phi93(1.0, bound) - phi93(1.0, k) - phi93(0.0, bound, log_k) + phi93(0.0, k, log_k))
        return np.where(s >= bound, s - k, value)
    t1 = 0.5 * (np.sqrt(5.0) - 1.0) * t
    scale = k * k / (spread * b_0)
    t_rest = t - t1  # remaining life of the second period [t1, T]: its flat boundary is I(T - t1)
    i1 = b_0 + spread * -np.expm1(np.minimum(-(b * t_rest + 2.0 * v * np.sqrt(t_rest)) * scale, 0.0))
    i2 = b_0 + spread * -np.expm1(np.minimum(-(b * t + 2.0 * v * np.sqrt(t)) * scale, 0.0))
    log_a1 = np.log(i1 - k) - beta * np.log(i1)
    log_a2 = np.log(i2 - k) - beta * np.log(i2)

    def phi(g: NDArray[np.float64] | float, h: NDArray[np.float64], i: NDArray[np.float64],
            ls: NDArray[np.float64] | float = 0.0) -> NDArray[np.float64]:
        return _bs_phi(s, t1, g, h, i, r, b, v, ls)

    def psi(g: NDArray[np.float64] | float, h: NDArray[np.float64],
            ls: NDArray[np.float64] | float = 0.0) -> NDArray[np.float64]:
        return _bs_psi(s, t, g, h, i2, i1, t1, r, b, v, ls)

    value = ((i2 - k) * np.exp(beta * np.log(s / i2)) - phi(beta, i2, i2, log_a2) + phi(1.0, i2, i2)
             - phi(1.0, i1, i2) - phi(0.0, i2, i2, log_k) + phi(0.0, i1, i2, log_k) + phi(beta, i1, i2, log_a1)
             - psi(beta, i1, log_a1) + psi(1.0, i1) - psi(1.0, k) - psi(0.0, i1, log_k) + psi(0.0, k, log_k))
    return np.where(s >= i2, s - k, value)


def _bs_price(w: NDArray[np.float64], s: NDArray[np.float64], k: NDArray[np.float64], t: NDArray[np.float64],
              v: NDArray[np.float64], r: NDArray[np.float64], q: NDArray[np.float64],
              version: str) -> NDArray[np.float64]:
    """Bjerksund-Stensland price; puts by ``P(S, K, T, r, b) = C(K, S, T, r - b, -b)``."""
    call = w > 0
    put = ~call
    b = r - q
    out = np.empty(s.shape)
    out[call] = _bs_call(s[call], k[call], t[call], v[call], r[call], b[call], version)
    out[put] = _bs_call(k[put], s[put], t[put], v[put], q[put], -b[put], version)
    return out


# ----------------------------------------------------------------------------------------- public API
def _american_flat(w: NDArray[np.float64], s: NDArray[np.float64], k: NDArray[np.float64],
                   t: NDArray[np.float64], v: NDArray[np.float64], r: NDArray[np.float64], q: NDArray[np.float64],
                   method: str, crit: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
    """American price of checked flat arrays; ``crit``: BAW critical prices to reuse (same K, T, sigma, r, q)."""
    out = np.maximum(w * (s - k), 0.0)
    live = t > 0.0
    call = w > 0
    euro = live & np.where(call, (q <= 0.0) & (r >= q), (r <= 0.0) & (q >= r))
    single = live & np.where(call, q > 0.0, r > 0.0)
    double = live & ~euro & ~single
    negligible = single & _negligible_premium(call, t, r, q)
    euro, single = euro | negligible, single & ~negligible
    if np.any(double):
        i = int(np.flatnonzero(double)[0])
        raise ComputationError(
            f"American {method}: rate={float(r[i])!r}, dividend_yield={float(q[i])!r} of the "
            f"{'call' if call[i] else 'put'} at flat index {i} ({int(np.count_nonzero(double))} option(s)) is a "
            "negative-rate regime with possibly two exercise boundaries, outside the single-boundary "
            "approximation; price it with greeksmargin.pricing.lattice_price")
    if np.any(euro):
        # no early exercise premium: the European value, floored at intrinsic (an American option can always
        # be exercised; the floor only removes floating-point rounding below it)
        out[euro] = np.maximum(bsm_price(call[euro], s[euro], k[euro], t[euro], v[euro], r[euro], q[euro]),
                               w[euro] * (s[euro] - k[euro]))
    if np.any(single):
        a = (w[single], s[single], k[single], t[single], v[single], r[single], q[single])
        if method == "baw":
            c = crit[single] if crit is not None else _baw_critical(a[0], *a[2:])
            val = _baw_price_at(*a, c)
        else:
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                val = _bs_price(*a, method)
        # an American option is worth at least the European one and its intrinsic value
        euro_val = bsm_price(call[single], *a[1:])
        val = np.maximum(val, np.maximum(euro_val, w[single] * (s[single] - k[single])))
        if not np.all(np.isfinite(val)):
            i = int(np.flatnonzero(single)[np.flatnonzero(~np.isfinite(val))[0]])
            raise ComputationError(f"American {method}: no finite price for the option at flat index {i}")
        out[single] = val
    return out


def _negligible_premium(call: NDArray[np.bool_], t: NDArray[np.float64], r: NDArray[np.float64],
                        q: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Single-boundary options whose early-exercise premium is below 1e-14 of the spot (call) or strike (put).

    The premium of an American call is at most the dividends forgone, ``S (1 - e^(-qT))``, that of a put the
    interest on the strike, ``K (1 - e^(-rT))``; below ``1e-14`` of S or K they are priced as European (the
    critical price runs beyond double precision there: ``1 - e^(-qT) N(d1)`` rounds to 0).
    """
    return np.where(call, -np.expm1(-q * t) <= NEGLIGIBLE, -np.expm1(-r * t) <= NEGLIGIBLE)


def _check_method(method: str) -> None:
    if method not in AMERICAN_METHODS:
        raise ValueError(f"method: expected one of {', '.join(AMERICAN_METHODS)}, got {method!r}")


def american_price(
    option_type: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    time_to_expiry: ArrayLike,
    vol: ArrayLike,
    rate: ArrayLike = 0.0,
    dividend_yield: ArrayLike = 0.0,
    *,
    method: Method = "baw",
) -> NDArray[np.float64]:
    """American call/put value by Barone-Adesi-Whaley or Bjerksund-Stensland (carry ``b = r - q``).

    Parameters
    ----------
    option_type : str, bool or array_like
        ``"call"``/``"put"`` (``"c"``/``"p"``), a bool is_call, or an array of either.
    spot : array_like
        Spot S > 0.
    strike : array_like
        Strike K > 0.
    time_to_expiry : array_like
        T >= 0, years (T = 0: intrinsic value).
    vol : array_like
        sigma > 0, decimal.
    rate : array_like, default 0.0
        Continuous risk-free rate r.
    dividend_yield : array_like, default 0.0
        Continuous dividend yield q (carry b = r - q).
    method : {"baw", "bs2002", "bs1993"}, default "baw"
        Barone-Adesi-Whaley (1987), Bjerksund-Stensland (2002) or (1993).

    Returns
    -------
    ndarray of float64
        Values of the broadcast shape, each at least the European value and the intrinsic value.

    Raises
    ------
    ValueError
        If an input is out of range (named) or ``method`` is unknown.
    ComputationError
        If an option is in the two-boundary negative-rate regime (named), or the BAW Newton iteration did not
        converge (the options are named).
    """
    _check_method(method)
    shape, w, (s, k, t, v, r, q) = _checked(option_type, spot, strike, time_to_expiry, vol, rate, dividend_yield)
    return _american_flat(w, s, k, t, v, r, q, method).reshape(shape)


def american_greeks(
    option_type: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    time_to_expiry: ArrayLike,
    vol: ArrayLike,
    rate: ArrayLike = 0.0,
    dividend_yield: ArrayLike = 0.0,
    *,
    method: Method = "baw",
) -> VanillaGreeks:
    """Price and Greeks of American options by central finite differences of :func:`american_price`.

    Bumps (:data:`BUMPS`): spot ``h = 1e-4 S`` (delta ``(V(S+h) - V(S-h)) / 2h``, gamma
    ``(V(S+h) - 2V + V(S-h)) / h^2``; for BAW at the same critical price, which does not depend on S), vol
    ``1e-4`` (or ``sigma/2`` if smaller), time ``1e-4`` years (theta = ``-(V(T+h) - V(T-h)) / 2h``; forward
    ``-(V(T+h) - V(T)) / h`` when T < 2e-4), rate and dividend yield ``1e-4`` each way (one-sided where a bump
    would enter the two-boundary negative-rate regime). The truncation error
    is O(h^2) (about 1e-8 relative on smooth inputs); a bump that crosses a regime edge (e.g. r = 0 for a
    put, where American = European starts) sees the kink of the price there.

    Parameters
    ----------
    option_type, spot, strike, time_to_expiry, vol, rate, dividend_yield : array_like
        As :func:`american_price`.
    method : {"baw", "bs2002", "bs1993"}, default "baw"

    Returns
    -------
    VanillaGreeks
        Arrays of the broadcast shape: price, delta, gamma, vega (per 1.00 vol), theta (per year),
        rho (per 1.00 rate), dividend_rho (per 1.00 dividend yield).
    """
    _check_method(method)
    shape, w, (s, k, t, v, r, q) = _checked(option_type, spot, strike, time_to_expiry, vol, rate, dividend_yield)

    def px(s_: NDArray[np.float64] = s, t_: NDArray[np.float64] = t, v_: NDArray[np.float64] = v,
           r_: NDArray[np.float64] = r, q_: NDArray[np.float64] = q,
           crit: NDArray[np.float64] | None = None, mask: NDArray[np.bool_] | None = None) -> NDArray[np.float64]:
        if mask is not None:
            return _american_flat(w[mask], s_[mask], k[mask], t_[mask], v_[mask], r_[mask], q_[mask], method)
        return _american_flat(w, s_, k, t_, v_, r_, q_, method, crit)

    crit = None
    if method == "baw":
        crit = np.full(s.shape, np.nan)
        single = (t > 0.0) & np.where(w > 0, q > 0.0, r > 0.0) & ~_negligible_premium(w > 0, t, r, q)
        if np.any(single):
            crit[single] = _baw_critical(w[single], k[single], t[single], v[single], r[single], q[single])
    price = px(crit=crit)
    hs = BUMPS["spot_rel"] * s
    up, dn = px(s_=s + hs, crit=crit), px(s_=s - hs, crit=crit)
    delta = (up - dn) / (2.0 * hs)
    gamma = (up - 2.0 * price + dn) / (hs * hs)
    hv = np.minimum(BUMPS["vol"], 0.5 * v)
    vega = (px(v_=v + hv) - px(v_=v - hv)) / (2.0 * hv)
    ht = BUMPS["time"]
    central = t >= 2.0 * ht
    t_dn = np.where(central, t - ht, t)
    theta = -(px(t_=t + ht) - px(t_=t_dn)) / np.where(central, 2.0 * ht, ht)
    rho = _carry_difference(px, w, t, r, q, price, "rate")
    dividend_rho = _carry_difference(px, w, t, r, q, price, "dividend_yield")
    return VanillaGreeks(*(a.reshape(shape) for a in (price, delta, gamma, vega, theta, rho, dividend_rho)))


def _carry_difference(px: Any, w: NDArray[np.float64], t: NDArray[np.float64], r: NDArray[np.float64],
                      q: NDArray[np.float64], price: NDArray[np.float64], which: str) -> NDArray[np.float64]:
    """dV/dr or dV/dq by central differences; one-sided where a bump would enter the two-boundary regime."""
    h = BUMPS[which]
    call = w > 0

    def regime_double(r_: NDArray[np.float64], q_: NDArray[np.float64]) -> NDArray[np.bool_]:
        return (t > 0.0) & np.where(call, (q_ <= 0.0) & (r_ < q_), (r_ <= 0.0) & (q_ < r_))

    up_r, up_q = (r + h, q) if which == "rate" else (r, q + h)
    dn_r, dn_q = (r - h, q) if which == "rate" else (r, q - h)
    up_bad, dn_bad = regime_double(up_r, up_q), regime_double(dn_r, dn_q)
    both = up_bad & dn_bad
    if np.any(both):
        i = int(np.flatnonzero(both)[0])
        raise ComputationError(f"American greeks: both {which} bumps of the option at flat index {i} enter the "
                               "two-boundary regime")
    up = np.where(up_bad, price, 0.0)
    dn = np.where(dn_bad, price, 0.0)
    ok_up, ok_dn = ~up_bad, ~dn_bad
    if np.any(ok_up):
        up[ok_up] = px(r_=up_r, q_=up_q, mask=ok_up)
    if np.any(ok_dn):
        dn[ok_dn] = px(r_=dn_r, q_=dn_q, mask=ok_dn)
    width = np.where(up_bad | dn_bad, h, 2.0 * h)
    return (up - dn) / width


def parse_exercise(exercise: ArrayLike) -> NDArray[np.bool_]:
    """Parse exercise styles into a boolean array, True for American.

    Parameters
    ----------
    exercise : str or array_like of str
        ``"european"`` or ``"american"`` (case-insensitive, surrounding blanks ignored).

    Returns
    -------
    ndarray of bool
        Same shape as ``exercise``; True where American.

    Raises
    ------
    ValueError
        Naming the first value that is neither (and its index).
    """
    arr = np.asarray(exercise)
    if arr.dtype.kind not in "UOS":
        raise ValueError(f"exercise: expected 'european'/'american' strings, got dtype {arr.dtype}")
    values, inverse = np.unique(arr.ravel(), return_inverse=True)
    keys = []
    for val in values:
        text = val.decode() if isinstance(val, bytes) else val
        key = text.strip().lower() if isinstance(text, str) else None
        if key not in ("european", "american"):
            where = int(np.flatnonzero(arr.ravel() == val)[0])
            raise ValueError(f"exercise: unknown exercise style {str(text)!r} at index {where} (use 'european' or "
                             "'american')")
        keys.append(key == "american")
    return np.asarray(keys, dtype=bool)[inverse].reshape(arr.shape)


def price_vanilla(
    option_type: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    time_to_expiry: ArrayLike,
    vol: ArrayLike,
    rate: ArrayLike = 0.0,
    dividend_yield: ArrayLike = 0.0,
    exercise: ArrayLike = "european",
    *,
    american_method: Method = "baw",
) -> NDArray[np.float64]:
    """Vanilla option values by exercise style: BSM for European options, an approximation for American ones.

    Parameters
    ----------
    option_type, spot, strike, time_to_expiry, vol, rate, dividend_yield : array_like
        As :func:`american_price` (European options also take vol = 0).
    exercise : str or array_like of str, default "european"
        ``"european"`` / ``"american"`` per option (broadcast with the other inputs).
    american_method : {"baw", "bs2002", "bs1993"}, default "baw"
        Approximation for the American options.

    Returns
    -------
    ndarray of float64
        Values of the broadcast shape.

    Raises
    ------
    ValueError, ComputationError
        As :func:`american_price` (for the American options) and for an unknown exercise style.
    """
    _check_method(american_method)
    amer = parse_exercise(exercise)
    shape, w, (s, k, t, v, r, q) = _checked(option_type, spot, strike, time_to_expiry, vol, rate, dividend_yield,
                                            vol_positive=False, extra_shape=amer.shape)
    am = np.broadcast_to(amer, shape).ravel()
    out = bsm_price(w > 0, s, k, t, v, r, q)
    if np.any(am):
        check_positive("vol (American options)", v[am])
        out[am] = _american_flat(w[am], s[am], k[am], t[am], v[am], r[am], q[am], american_method)
    return out.reshape(shape)


def vanilla_greeks(
    option_type: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    time_to_expiry: ArrayLike,
    vol: ArrayLike,
    rate: ArrayLike = 0.0,
    dividend_yield: ArrayLike = 0.0,
    exercise: ArrayLike = "european",
    *,
    american_method: Method = "baw",
) -> VanillaGreeks:
    """Price and Greeks by exercise style: analytic BSM for European options, :func:`american_greeks` otherwise.

    European dividend rho is ``dV/dq = -w T S e^(-qT) N(w d1)`` (w = +1 call, -1 put).

    Parameters
    ----------
    option_type, spot, strike, time_to_expiry, vol, rate, dividend_yield, exercise : array_like
        As :func:`price_vanilla`.
    american_method : {"baw", "bs2002", "bs1993"}, default "baw"

    Returns
    -------
    VanillaGreeks
        Arrays of the broadcast shape (units as :class:`VanillaGreeks`).
    """
    _check_method(american_method)
    amer = parse_exercise(exercise)
    shape, w, (s, k, t, v, r, q) = _checked(option_type, spot, strike, time_to_expiry, vol, rate, dividend_yield,
                                            vol_positive=False, extra_shape=amer.shape)
    am = np.broadcast_to(amer, shape).ravel()
    g = black_scholes_merton(w > 0, s, k, t, v, r, q)
    with np.errstate(divide="ignore", invalid="ignore"):
        sq = v * np.sqrt(t)
        d1 = np.where(sq > 0, (np.log(s / k) + (r - q + 0.5 * v * v) * t) / np.where(sq > 0, sq, 1.0),
                      np.sign(np.log(s / k) + (r - q) * t) * 60.0)
    dividend_rho = -w * t * s * np.exp(-q * t) * ndtr(w * d1)
    cols = [np.array(a, dtype=np.float64) for a in (g.price, g.delta, g.gamma, g.vega, g.theta, g.rho)]
    cols.append(dividend_rho)
    if np.any(am):
        check_positive("vol (American options)", v[am])
        ga = american_greeks(w[am] > 0, s[am], k[am], t[am], v[am], r[am], q[am], method=american_method)
        for col, val in zip(cols, (ga.price, ga.delta, ga.gamma, ga.vega, ga.theta, ga.rho, ga.dividend_rho)):
            col[am] = val
    return VanillaGreeks(*(c.reshape(shape) for c in cols))
