"""Coverage tests of a margin backtest and the summary statistics of a margin series.

Kupiec proportion of failures (POF)
    ``x`` breaches in ``n`` days, expected breach probability ``p = 1 - c``, observed ``pi = x/n``:
    ``LR_pof = -2 [ (n-x) ln(1-p) + x ln p - (n-x) ln(1-pi) - x ln pi ]`` ~ chi2(1); two-sided (too many
    and too few breaches both reject). ``0 ln 0 = 0``.

Excess breaches (one-sided)
    ``P(X >= x)``, ``X ~ Binomial(n, 1 - c)``: rejects only too many breaches (under-coverage).

Christoffersen independence
    Transition counts ``n_ij`` (state i yesterday -> state j today, 1 = breach), ``pi_01 = n01/(n00+n01)``,
    ``pi_11 = n11/(n10+n11)``, ``pi = (n01+n11)/(n00+n01+n10+n11)``:
    ``LR_ind = -2 [ ln L(pi) - ln L(pi_01, pi_11) ]`` ~ chi2(1). Conditional coverage
    ``LR_cc = LR_pof + LR_ind`` ~ chi2(2) (with ``LR_pof`` on the same ``n - 1`` transitions' days).

Procyclicality
    Peak-to-trough ratio of the margin over every rolling window of ``window`` days (252: one year):
    ``max_t max(IM[t-w+1..t]) / min(IM[t-w+1..t])``; also the whole-sample ratio.

Margin efficiency
    ``mean(IM) / mean(max(loss, 0))``: margin held per unit of average realised loss (higher = more
    conservative, costlier).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import xlogy
from scipy.stats import binom, chi2

from greeksmargin.errors import InputError


@dataclass(frozen=True)
class TestResult:
    """A likelihood-ratio test: statistic, degrees of freedom, p-value."""

    statistic: float
    dof: int
    p_value: float


def kupiec_pof(n_breaches: int, n_obs: int, confidence: float) -> TestResult:
    """Kupiec proportion-of-failures likelihood-ratio test (module docstring).

    Parameters
    ----------
    n_breaches : int
        Days on which the loss exceeded the margin, ``0 <= x <= n``.
    n_obs : int
        Days tested, > 0.
    confidence : float
        Margin confidence level ``c``; the expected breach probability is ``1 - c``.

    Returns
    -------
    TestResult
        ``LR_pof`` and its chi2(1) p-value.
    """
    x, n = int(n_breaches), int(n_obs)
    if n <= 0 or not 0 <= x <= n:
        raise InputError(f"need 0 <= breaches <= observations and observations > 0, got {x}, {n}")
    p = 1.0 - float(confidence)
    pi = x / n
    ll0 = xlogy(n - x, 1.0 - p) + xlogy(x, p)
    ll1 = xlogy(n - x, 1.0 - pi) + xlogy(x, pi)
    lr = max(0.0, -2.0 * (ll0 - ll1))
    return TestResult(float(lr), 1, float(chi2.sf(lr, 1)))


def excess_breaches_p(n_breaches: int, n_obs: int, confidence: float) -> float:
    """One-sided binomial p-value of at least ``n_breaches`` breaches in ``n_obs`` days at rate ``1 - c``.

    ``P(X >= x)`` for ``X ~ Binomial(n, 1 - c)``: small when the margin is breached too often
    (under-coverage); unlike Kupiec's two-sided test it does not reject a conservative margin.
    """
    x, n = int(n_breaches), int(n_obs)
    if n <= 0 or not 0 <= x <= n:
        raise InputError(f"need 0 <= breaches <= observations and observations > 0, got {x}, {n}")
    return float(binom.sf(x - 1, n, 1.0 - float(confidence)))


def transition_counts(breaches: np.ndarray) -> tuple[int, int, int, int]:
    """Counts ``(n00, n01, n10, n11)`` of consecutive breach states in a boolean series of shape (n,)."""
    b = np.asarray(breaches, dtype=bool)
    prev, cur = b[:-1], b[1:]
    return (
        int(np.sum(~prev & ~cur)),
        int(np.sum(~prev & cur)),
        int(np.sum(prev & ~cur)),
        int(np.sum(prev & cur)),
    )


def christoffersen_independence(breaches: np.ndarray) -> TestResult:
    """Christoffersen (1998) Markov independence test of a breach series (module docstring).

    Parameters
    ----------
    breaches : ndarray of shape (n,)
        Boolean breach indicator per day, in time order.

    Returns
    -------
    TestResult
        ``LR_ind`` and its chi2(1) p-value (p = 1 when there are no breaches or no non-breaches).
    """
    n00, n01, n10, n11 = transition_counts(breaches)
    tot = n00 + n01 + n10 + n11
    if tot == 0 or n01 + n11 == 0 or n00 + n10 == 0:
        return TestResult(0.0, 1, 1.0)
    pi = (n01 + n11) / tot
    pi01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    ll0 = xlogy(n00 + n10, 1.0 - pi) + xlogy(n01 + n11, pi)
    ll1 = xlogy(n00, 1.0 - pi01) + xlogy(n01, pi01) + xlogy(n10, 1.0 - pi11) + xlogy(n11, pi11)
    lr = max(0.0, -2.0 * (ll0 - ll1))
    return TestResult(float(lr), 1, float(chi2.sf(lr, 1)))


def conditional_coverage(breaches: np.ndarray, confidence: float) -> TestResult:
    """Christoffersen conditional-coverage test ``LR_pof + LR_ind`` ~ chi2(2) on a breach series (n,)."""
    b = np.asarray(breaches, dtype=bool)
    pof = kupiec_pof(int(b.sum()), b.size, confidence)
    ind = christoffersen_independence(b)
    lr = pof.statistic + ind.statistic
    return TestResult(float(lr), 2, float(chi2.sf(lr, 2)))


def peak_to_trough(margin: np.ndarray, window: int = 252) -> float:
    """Largest ratio of the maximum to the minimum margin within any rolling window.

    Parameters
    ----------
    margin : ndarray of shape (n,)
        Margin series (> 0), one per day.
    window : int
        Window length in observations (252 trading days = one year; the whole series if shorter).

    Returns
    -------
    float
        ``max_t max(IM[t-w+1..t]) / min(IM[t-w+1..t])`` (NaN if some margin in a window is <= 0).
    """
    m = np.asarray(margin, dtype=float)
    if m.size == 0:
        return float("nan")
    w = int(min(max(1, window), m.size))
    from numpy.lib.stride_tricks import sliding_window_view

    v = sliding_window_view(m, w)
    lo = v.min(axis=1)
    hi = v.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(lo > 0, hi / lo, np.nan)
    return float(np.nan if np.isnan(ratio).any() else ratio.max())


def margin_efficiency(margin: np.ndarray, loss: np.ndarray) -> float:
    """``mean(margin) / mean(max(loss, 0))`` over the same days (arrays of shape (n,)); inf if no loss."""
    m = np.asarray(margin, dtype=float)
    loss_pos = np.maximum(np.asarray(loss, dtype=float), 0.0)
    denom = loss_pos.mean()
    return float(m.mean() / denom) if denom > 0 else float("inf")
