"""The single place where unit conventions are converted.

The pricing layer returns textbook partials (README, Conventions and units):

* ``delta`` dV/dS, ``gamma`` d2V/dS2, ``vega`` dV/dsigma per 1.00 of vol, ``theta`` dV/dt per year
  (calendar, ACT/365, sign: value change as time passes), ``rho`` per 1.00 of rate,
  ``vanna`` d2V/dS dsigma, ``volga`` d2V/dsigma2.

Reported (cash) Greeks carry their unit in their name. With ``m = dS/S`` the relative move, ``dsigma``
the vol change (decimal) and ``days`` calendar days, the Taylor expansion that ties them together is::

    dV ~ delta_cash * m + 0.5 * gamma_cash_1pct * (m / 0.01)**2 + vega_1volpt * (dsigma / 0.01) + theta_1d * days

``delta_cash = delta * S * size`` (value change per 1.00 relative move; x0.01 gives the 1% delta),
``gamma_cash_1pct = gamma * S**2 * size * 1e-4``, ``vega_1volpt = vega * 0.01 * size``,
``theta_1d = theta / 365 * size``; ``size`` = quantity x multiplier.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

DAYS_PER_YEAR = 365.0
SECONDS_PER_YEAR = DAYS_PER_YEAR * 86400.0
MS_PER_YEAR = SECONDS_PER_YEAR * 1000.0
VOL_POINT = 0.01
ONE_PERCENT = 0.01
MAX_DECIMAL_VOL = 5.0  # a vol above this is almost surely given in percent: an error, not a guess


def vega_per_volpt(vega: ArrayLike) -> NDArray[np.float64]:
    """Convert vega per 1.00 of vol to vega per vol point (0.01)."""
    return np.asarray(vega, dtype=float) * VOL_POINT


def vega_per_unit_vol(vega_volpt: ArrayLike) -> NDArray[np.float64]:
    """Convert vega per vol point (vollib, Deribit) to vega per 1.00 of vol."""
    return np.asarray(vega_volpt, dtype=float) / VOL_POINT


def theta_per_day(theta: ArrayLike) -> NDArray[np.float64]:
    """Convert theta per year to theta per calendar day (ACT/365)."""
    return np.asarray(theta, dtype=float) / DAYS_PER_YEAR


def theta_per_year(theta_day: ArrayLike) -> NDArray[np.float64]:
    """Convert theta per calendar day (vollib, Deribit) to theta per year."""
    return np.asarray(theta_day, dtype=float) * DAYS_PER_YEAR


def rho_per_pct(rho: ArrayLike) -> NDArray[np.float64]:
    """Convert rho per 1.00 of rate to rho per 1% of rate (vollib's convention)."""
    return np.asarray(rho, dtype=float) * ONE_PERCENT


def delta_cash(delta: ArrayLike, spot: ArrayLike, size: ArrayLike) -> NDArray[np.float64]:
    """Cash delta: value change per 1.00 relative move, ``delta * S * size`` (size = qty x multiplier)."""
    return np.asarray(delta, dtype=float) * np.asarray(spot, dtype=float) * np.asarray(size, dtype=float)


def delta_1pct(delta: ArrayLike, spot: ArrayLike, size: ArrayLike) -> NDArray[np.float64]:
    """Value change for a +1% relative move of the underlying (SIMM equity delta convention)."""
    return delta_cash(delta, spot, size) * ONE_PERCENT


def gamma_cash_1pct(gamma: ArrayLike, spot: ArrayLike, size: ArrayLike) -> NDArray[np.float64]:
    """Change of ``delta_1pct`` for a 1% move: ``gamma * S**2 * size * 1e-4``.

    The second-order value change for a relative move ``m`` is ``0.5 * gamma_cash_1pct * (m / 0.01)**2``.
    """
    s = np.asarray(spot, dtype=float)
    return np.asarray(gamma, dtype=float) * s * s * np.asarray(size, dtype=float) * ONE_PERCENT**2


def vega_1volpt(vega: ArrayLike, size: ArrayLike) -> NDArray[np.float64]:
    """Value change for +1 vol point: ``vega * 0.01 * size``."""
    return vega_per_volpt(vega) * np.asarray(size, dtype=float)


def theta_1d(theta: ArrayLike, size: ArrayLike) -> NDArray[np.float64]:
    """Value change over one calendar day: ``theta / 365 * size``."""
    return theta_per_day(theta) * np.asarray(size, dtype=float)


def years_between_ms(start_ms: ArrayLike, end_ms: ArrayLike) -> NDArray[np.float64]:
    """Years (ACT/365) from ``start_ms`` to ``end_ms``, both in milliseconds since the epoch."""
    return (np.asarray(end_ms, dtype=float) - np.asarray(start_ms, dtype=float)) / MS_PER_YEAR
