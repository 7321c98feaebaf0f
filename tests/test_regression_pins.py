"""Figures pinned before the core redesign (tests/pins/make_pins.py): the redesign must not move them.

Every account of the bundled example book under every shipped model (currency, status, IM, MM, isolated IM)
and every numeric figure of every validation suite's published cases, equal to 1e-12 relative.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "pins"))
import make_pins  # noqa: E402

PINS = json.loads((Path(__file__).parent / "pins" / "regression.json").read_text())


def _assert_same(pinned: dict, now: dict, where: str) -> None:
    assert set(now) == set(pinned), f"{where}: keys differ: {sorted(set(now) ^ set(pinned))[:10]}"
    for key, want in pinned.items():
        got = now[key]
        if isinstance(want, float) and isinstance(got, float):
            assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12), f"{where} {key}: {got!r} != {want!r}"
        else:
            assert got == want, f"{where} {key}: {got!r} != {want!r}"


def test_every_shipped_model_on_the_example_book_is_unchanged() -> None:
    now = make_pins.model_pins()
    assert set(now) == set(PINS["models"])
    for model, accounts in PINS["models"].items():
        assert set(now[model]) == set(accounts), model
        for account, figures in accounts.items():
            _assert_same(figures, now[model][account], f"{model}/{account}")


@pytest.mark.parametrize("suite", sorted(PINS["suites"]))
def test_every_validation_suite_figure_is_unchanged(suite: str) -> None:
    now = make_pins.suite_pins_of(suite)
    assert set(now) == set(PINS["suites"][suite])
    for case, figures in PINS["suites"][suite].items():
        _assert_same(figures, now[case], f"{suite}/{case}")
