"""Command-line conventions: --version, defaults in every help, --out's extension, the umask, --quiet."""

import argparse
import json
import os
import re
import stat

import pytest

from greeksmargin._version import __version__
from greeksmargin.cli import build_parser, main
from greeksmargin.datasets import example_paths

SCI = re.compile(r"\d[eE][+-]?\d")


def _subparsers():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"greeksmargin {__version__}"


@pytest.mark.parametrize("command", sorted(_subparsers()))
def test_every_argument_has_help_and_its_default_shown(command):
    p = _subparsers()[command]
    formatter = p._get_formatter()
    for a in p._actions:
        if isinstance(a, argparse._HelpAction):
            continue
        assert a.help, f"{command} {a.option_strings or a.dest}: no help"
        if not a.option_strings or isinstance(a, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            continue
        shown = formatter._expand_help(a)
        assert shown in " ".join(p.format_help().split()) or shown.split()[0] in p.format_help()
        assert "default" in shown.lower() or "required" in shown.lower(), f"{command} {a.option_strings}: {shown}"
        if a.default not in (None, "", []) and "default:" in shown and "%(default)" not in (a.help or ""):
            assert str(a.default) in shown or "default" in (a.help or "").lower()


@pytest.fixture(scope="module")
def paths():
    p = example_paths()
    return [str(p["positions"]), str(p["market"])]


def test_out_extension_chooses_the_format_and_a_conflict_is_an_error(paths, tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["margin", *paths, "--out", str(out), "--quiet"]) == 0
    doc = json.loads(out.read_text())
    assert {"model", "accounts"} <= set(doc)
    assert main(["margin", *paths, "--out", str(tmp_path / "m.csv"), "--format", "json"]) == 2
    assert "conflicts with the extension" in capsys.readouterr().err
    # a command that does not write Parquet refuses the extension rather than writing text into it
    assert main(["greeks", *paths, "--out", str(tmp_path / "g.parquet")]) == 2
    assert "does not write parquet" in capsys.readouterr().err
    assert not (tmp_path / "g.parquet").exists()


def test_output_file_honours_the_umask_and_quiet_is_quiet(paths, tmp_path, capsys):
    old = os.umask(0o022)
    try:
        out = tmp_path / "m.csv"
        assert main(["--quiet", "margin", *paths, "--out", str(out)]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    cap = capsys.readouterr()
    assert cap.err == "" and cap.out == ""
    assert [p.name for p in tmp_path.iterdir()] == ["m.csv"]


def test_margin_table_has_no_scientific_notation(paths, capsys):
    assert main(["margin", *paths]) == 0
    out = capsys.readouterr().out
    assert not SCI.search(out)
    assert re.search(r"\d{1,3},\d{3}", out)


def test_margin_out_parquet_writes_parquet(tmp_path):
    import pandas as pd

    from greeksmargin.cli import main
    from greeksmargin.datasets import example_paths

    p = example_paths()
    out = tmp_path / "accounts.parquet"
    assert main(["margin", str(p["positions"]), str(p["market"]), "--out", str(out)]) == 0
    table = pd.read_parquet(out)  # a real Parquet file, typed (not text)
    assert len(table) == 7 and table["im"].dtype == float
    assert main(["margin", str(p["positions"]), str(p["market"]), "--out", str(out), "--format", "csv"]) == 2
