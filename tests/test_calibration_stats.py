import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from greeksmargin.calibration import stats


def test_kupiec_textbook_value():
    # x = 10 breaches in n = 500 days at 99%: LR = -2 ln[(0.99^490 0.01^10) / ((490/500)^490 (10/500)^10)]
    n, x, p = 500, 10, 0.01
    lr = -2 * ((n - x) * math.log(1 - p) + x * math.log(p) - (n - x) * math.log(1 - x / n) - x * math.log(x / n))
    r = stats.kupiec_pof(x, n, 0.99)
    assert r.statistic == pytest.approx(lr, rel=1e-12)
    from scipy.stats import chi2

    assert r.p_value == pytest.approx(chi2.sf(lr, 1), rel=1e-12)
    assert 0.01 < r.p_value < 0.05  # 10 breaches where 5 are expected: rejected at 5%
    assert stats.kupiec_pof(5, 500, 0.99).p_value == pytest.approx(1.0)
    zero = stats.kupiec_pof(0, 1000, 0.99)
    assert zero.statistic == pytest.approx(-2 * 1000 * math.log(0.99)) and zero.p_value < 1e-4


@given(st.integers(1, 3000), st.floats(0.9, 0.999), st.data())
def test_kupiec_bounds(n, c, data):
    x = data.draw(st.integers(0, n))
    r = stats.kupiec_pof(x, n, c)
    assert r.statistic >= 0 and 0 <= r.p_value <= 1
    assert 0 <= stats.excess_breaches_p(x, n, c) <= 1


def test_excess_breaches_one_sided():
    assert stats.excess_breaches_p(0, 1000, 0.99) == 1.0
    assert stats.excess_breaches_p(25, 1000, 0.99) < 1e-4
    assert stats.excess_breaches_p(10, 1000, 0.99) > 0.4


def test_christoffersen_independent_vs_clustered():
    rng = np.random.default_rng(3)
    iid = rng.random(5000) < 0.02
    assert stats.christoffersen_independence(iid).p_value > 0.01
    clustered = np.zeros(5000, bool)
    for s in range(100, 5000, 500):
        clustered[s : s + 5] = True
    r = stats.christoffersen_independence(clustered)
    assert r.p_value < 1e-6
    assert stats.transition_counts(np.array([0, 1, 1, 0, 0], bool)) == (1, 1, 1, 1)
    assert stats.christoffersen_independence(np.zeros(10, bool)).p_value == 1.0
    cc = stats.conditional_coverage(clustered, 0.99)
    assert cc.dof == 2 and cc.p_value < 1e-6


def test_peak_to_trough_and_efficiency():
    m = np.r_[np.full(300, 10.0), np.full(300, 40.0)]
    assert stats.peak_to_trough(m, 252) == pytest.approx(4.0)
    assert stats.peak_to_trough(np.full(10, 3.0), 252) == pytest.approx(1.0)
    assert stats.margin_efficiency(np.full(4, 10.0), np.array([-5.0, 5.0, 1.0, -1.0])) == pytest.approx(10 / 1.5)
