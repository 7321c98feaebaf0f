import numpy as np
import pytest

from greeksmargin import units
from greeksmargin.errors import InputError, ModelError


def test_vega_and_theta_round_trip():
    v = np.array([12.5, -3.0])
    assert np.allclose(units.vega_per_unit_vol(units.vega_per_volpt(v)), v)
    assert np.allclose(units.theta_per_year(units.theta_per_day(v)), v)
    assert units.vega_per_volpt(100.0) == pytest.approx(1.0)
    assert units.theta_per_day(365.0) == pytest.approx(1.0)


def test_cash_greeks_taylor_expansion_matches_quadratic_payoff():
    # V(S) = 0.5 * S^2 has delta S and gamma 1: the second-order expansion is exact.
    s, size, m = 100.0, 3.0, 0.02
    delta, gamma = s, 1.0
    dv_true = size * 0.5 * ((s * (1 + m)) ** 2 - s**2)
    dv = units.delta_cash(delta, s, size) * m + 0.5 * units.gamma_cash_1pct(gamma, s, size) * (m / 0.01) ** 2
    assert dv == pytest.approx(dv_true, rel=1e-12)


def test_years_between_ms():
    assert units.years_between_ms(0, 365 * 86400 * 1000) == pytest.approx(1.0)


def test_input_error_names_file_row_column():
    err = InputError("strike must be positive", file="book.csv", row=3, column="strike")
    assert str(err) == "file book.csv, row 3, column 'strike': strike must be positive"
    assert (err.file, err.row, err.column) == ("book.csv", 3, "strike")


def test_model_error_names_file_and_key():
    err = ModelError("unknown key", file="m.toml", key="scan.pricee_shock")
    assert "m.toml" in str(err) and "scan.pricee_shock" in str(err)
