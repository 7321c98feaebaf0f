"""Binomial lattices (Cox-Ross-Rubinstein, Leisen-Reimer): the plain reference for American exercise.

Vectorised over options with numpy: the values of ``m`` options live in one array of shape ``(m, i + 1)``
at step ``i`` of the backward induction, so ``n_steps`` steps cost O(m n^2 / 2) flops. The lattices are
the obviously-correct reference of :mod:`greeksmargin.pricing.american` (tests hold the closed-form
approximations within a stated tolerance of them), not a production kernel.

Model: generalised Black-Scholes-Merton, spot ``S`` with continuous carry ``b = r - q``, discounting at
``r``; American exercise at every step (the intrinsic value ``max(w (S_node - K), 0)`` is compared with the
continuation value), European at expiry only.

- ``"crr"``: Cox, Ross and Rubinstein (1979): ``u = exp(sigma sqrt(dt))``, ``d = 1/u``,
  ``p = (exp(b dt) - d) / (u - d)``; error O(1/n) with the usual odd/even oscillation.
- ``"lr"``: Leisen and Reimer (1996), Peizer-Pratt inversion (method 2) of ``d2`` and ``d1`` on an odd number
  of steps (an even ``n_steps`` is raised by one); error O(1/n^2) for European options, smooth O(1/n)
  convergence for American ones.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._common import checked_flat_inputs

__all__ = ["lattice_price"]

Scheme = Literal["crr", "lr"]


def lattice_price(
    option_type: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    time_to_expiry: ArrayLike,
    vol: ArrayLike,
    rate: ArrayLike = 0.0,
    dividend_yield: ArrayLike = 0.0,
    *,
    exercise: Literal["american", "european"] = "american",
    n_steps: int = 501,
    scheme: Scheme = "lr",
) -> NDArray[np.float64]:
    """Binomial-lattice value of vanilla options, American or European, vectorised over options.

    Parameters
    ----------
    option_type : str, bool or array_like
        ``"call"``/``"put"`` (``"c"``/``"p"``), a bool is_call, or an array of either.
    spot : array_like
        Spot S > 0.
    strike : array_like
        Strike K > 0.
    time_to_expiry : array_like
        T >= 0, years (T = 0 gives the intrinsic value).
    vol : array_like
        sigma > 0, decimal.
    rate : array_like, default 0.0
        Continuous risk-free rate r (discounting).
    dividend_yield : array_like, default 0.0
        Continuous dividend yield q; the carry is ``b = r - q``.
    exercise : {"american", "european"}, default "american"
        Exercise at every step, or at expiry only.
    n_steps : int, default 501
        Number of time steps (>= 1; ``"lr"`` uses the next odd number).
    scheme : {"lr", "crr"}, default "lr"
        Leisen-Reimer or Cox-Ross-Rubinstein.

    Returns
    -------
    ndarray of float64
        Option values (currency of the strike), of the broadcast shape of the inputs.

    Raises
    ------
    ValueError
        If an input is out of range (the message names it), ``exercise``/``scheme`` is unknown, or a
        branching probability falls outside (0, 1) (too few steps for the carry: the message says which
        option and asks for more steps).
    """
    if exercise not in ("american", "european"):
        raise ValueError(f"exercise: expected 'american' or 'european', got {exercise!r}")
    if scheme not in ("crr", "lr"):
        raise ValueError(f"scheme: expected 'crr' or 'lr', got {scheme!r}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"n_steps: expected an integer >= 1, got {n_steps!r}")
    shape, w, (s0, k, t, v, r, q) = checked_flat_inputs(option_type, spot, strike, time_to_expiry, vol, rate,
                                                        dividend_yield)
    n = int(n_steps) + (1 if scheme == "lr" and n_steps % 2 == 0 else 0)
    out = np.maximum(w * (s0 - k), 0.0)
    live = t > 0.0
    if np.any(live):
        out[live] = _induct(w[live], s0[live], k[live], t[live], v[live], r[live], q[live], n, scheme,
                            exercise == "american", np.flatnonzero(live))
    return out.reshape(shape)


def _induct(w: NDArray[np.float64], s0: NDArray[np.float64], k: NDArray[np.float64], t: NDArray[np.float64],
            v: NDArray[np.float64], r: NDArray[np.float64], q: NDArray[np.float64], n: int, scheme: str,
            american: bool, index: NDArray[np.intp]) -> NDArray[np.float64]:
    """Backward induction on ``n`` steps for options of shape (m,) (``index``: their flat positions)."""
    dt = t / n
    growth = np.exp((r - q) * dt)
    if scheme == "crr":
        u = np.exp(v * np.sqrt(dt))
        d = 1.0 / u
        p = (growth - d) / (u - d)
    else:
        sq = v * np.sqrt(t)
        d1 = (np.log(s0 / k) + (r - q + 0.5 * v * v) * t) / sq
        d2 = d1 - sq
        p = _peizer_pratt(d2, n)
        pbar = _peizer_pratt(d1, n)
        u = growth * pbar / p
        d = (growth - p * u) / (1.0 - p)
    bad = ~((p > 0.0) & (p < 1.0) & (d > 0.0) & (u > d))
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"n_steps: branching probability {float(p[i])!r} outside (0, 1) for the option at flat "
                         f"index {int(index[i])} (carry too large for {n} steps; use more steps)")
    disc = np.exp(-r * dt)
    pu = (disc * p)[:, None]
    pd = (disc * (1.0 - p))[:, None]
    j = np.arange(n + 1, dtype=np.float64)
    log_u, log_d = np.log(u)[:, None], np.log(d)[:, None]
    node = s0[:, None] * np.exp(j * log_u + (n - j) * log_d)  # S u^j d^(n-j), j = 0..n
    w2 = w[:, None]
    k2 = k[:, None]
    val = np.maximum(w2 * (node - k2), 0.0)
    inv_d = np.exp(-log_d)
    for _ in range(n):
        val = pu * val[:, 1:] + pd * val[:, :-1]
        if american:
            node = node[:, :-1] * inv_d  # S u^j d^(i-j) at step i from step i + 1
            np.maximum(val, w2 * (node - k2), out=val)
    return val[:, 0]


def _peizer_pratt(z: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    """Peizer-Pratt method-2 inversion h(z) of the normal CDF on ``n`` (odd) steps (Leisen-Reimer 1996)."""
    x = z / (n + 1.0 / 3.0 + 0.1 / (n + 1.0))
    return 0.5 + np.sign(z) * 0.5 * np.sqrt(-np.expm1(-x * x * (n + 1.0 / 6.0)))
