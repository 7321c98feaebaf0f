"""One formatting module: separators, decimals by unit, never scientific notation; wide tables wrap."""

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greeksmargin.reports import fmt
from greeksmargin.reports.html import render_page, table_html

SCI = re.compile(r"\d[eE][+-]?\d")


@pytest.mark.parametrize("value, text", [
    (5228649.4, "5,228,649"), (5.93482e6, "5,934,820"), (12.345, "12.35"), (0.001234, "0.001234"),
    (1.343e-19, "0.00"), (-2.41e6, "-2,410,000"), (1e17, "100,000,000,000,000,000"), (float("nan"), ""),
    (float("inf"), "inf"),
])
def test_amounts(value, text):
    assert fmt.amount(value) == text


def test_units_by_column_name():
    assert fmt.cell("move", -0.25) == "-25.00%"
    assert fmt.cell("final_move_ETH", 0.011) == "+1.10%"
    assert fmt.cell("saving_pct", 12.345) == "12.35%"
    assert fmt.cell("margin_ratio", 1.23456) == "1.2346"
    assert fmt.cell("kupiec_p", 1e-13) == "< 0.0001"
    assert fmt.cell("n_liquidated", 2753.0) == "2,753"
    assert fmt.cell("im", 5228649.0) == "5,228,649"
    assert fmt.cell("im", 0.0123456) == "0.01235"  # a coin amount keeps its digits


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False, width=64),
       st.sampled_from(["im", "move", "margin_ratio", "saving_pct", "kupiec_p", "n", "flow_usd"]))
def test_never_scientific(x, column):
    assert not SCI.search(fmt.cell(column, x))


def test_wide_table_wraps_into_blocks_repeating_the_key():
    df = pd.DataFrame({"account": ["A", "B"], **{f"col_{i}": [1e6 * i, 2.0] for i in range(12)}})
    text = fmt.format_table(df, width=60)
    assert max(len(line) for line in text.splitlines()) <= 60
    assert text.count("account") >= 2
    assert all(f"col_{i}" in text for i in range(12))
    assert fmt.format_table(df).count("account") == 1


def test_html_table_is_boxed_sortable_and_plain():
    df = pd.DataFrame({"account": ["A"], "im": [2.41e6], "p": [np.float64(1.343e-19)]})
    h = table_html(df)
    assert "tablebox" in h and "sortable" in h and "2,410,000" in h
    assert not SCI.search(h)
    page = render_page("T", [{"title": "t", "html": h}], summary=[("model", "greeks-default"), ("total IM", 2.41e6)])
    assert page.index("dl class='summary'") < page.index("<h2>t</h2>")
    assert "2,410,000" in page
