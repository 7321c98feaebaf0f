"""Pricing kernels: Black-Scholes-Merton, Black-76, coin-settled (inverse) options, implied vol.

Pure functions on float64 ndarrays (broadcasting), no pandas. Greeks are textbook partials: vega per 1.00
of vol, theta per year (calendar, value change as time passes), rho per 1.00 of rate; see
:mod:`greeksmargin.pricing.black` for the limits (T = 0, vol = 0) and :mod:`greeksmargin.units` for
conversions. ``backend="numba"`` selects the compiled twins of :mod:`greeksmargin.pricing._numba`.
"""

from __future__ import annotations

from greeksmargin.pricing._common import is_call_array
from greeksmargin.pricing.black import (
    Greeks,
    black76,
    black76_greeks5,
    black76_price,
    black_scholes_merton,
    bsm_price,
)
from greeksmargin.pricing.implied import ImpliedVolResult, implied_vol, inverse_implied_vol
from greeksmargin.pricing.inverse import InverseGreeks, inverse_option, inverse_price

__all__ = [
    "Greeks",
    "ImpliedVolResult",
    "InverseGreeks",
    "black76",
    "black76_greeks5",
    "black76_price",
    "black_scholes_merton",
    "bsm_price",
    "implied_vol",
    "inverse_implied_vol",
    "inverse_option",
    "inverse_price",
    "is_call_array",
]

# American exercise (Barone-Adesi-Whaley, Bjerksund-Stensland), the reference lattice and the exercise dispatcher
from .american import (  # noqa: E402
    AMERICAN_METHODS,
    VanillaGreeks,
    american_greeks,
    american_price,
    bivariate_normal_cdf,
    early_exercise_regime,
    price_vanilla,
    vanilla_greeks,
)
from .lattice import lattice_price  # noqa: E402

__all__ += [
    "AMERICAN_METHODS",
    "VanillaGreeks",
    "american_greeks",
    "american_price",
    "bivariate_normal_cdf",
    "early_exercise_regime",
    "lattice_price",
    "price_vanilla",
    "vanilla_greeks",
]

# FX delta conventions (spot, forward, premium-adjusted) and strikes from deltas
from .conventions import (  # noqa: E402
    DELTA_TYPES,
    fx_delta,
    max_premium_adjusted_call_delta,
    strike_from_delta,
)

__all__ += ["DELTA_TYPES", "fx_delta", "max_premium_adjusted_call_delta", "strike_from_delta"]
