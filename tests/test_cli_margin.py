import json
import re

import pandas as pd
import pytest
from margin_fixtures import book, row

from greeksmargin.cli import main
from greeksmargin.datasets import example_paths


@pytest.fixture(scope="module")
def paths():
    p = example_paths()
    return str(p["positions"]), str(p["market"])


def test_margin_table_on_the_bundled_book(paths, capsys):
    assert main(["margin", *paths, "--model", "greeks-default"]) == 0
    out = capsys.readouterr().out
    for word in ("im", "mm", "isolated_im", "saving", "scan", "delta", "vega", "BTC-COVCALL", "SPX-DESK"):
        assert word in out
    assert "Totals per currency" in out


def test_margin_json_and_csv(paths, capsys, tmp_path):
    assert main(["margin", *paths, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    accs = {a["account"]: a for a in doc["accounts"]}
    assert len(accs) == 7 and all(a["im"] > 0 for a in accs.values())
    assert doc["model"]["name"] == "greeks-default" and doc["components"]
    out = tmp_path / "m.csv"
    assert main(["margin", *paths, "--model", "tims-pm", "--format", "csv", "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert {"account", "im", "mm", "isolated_im", "contract_floor"} <= set(df.columns)


def test_margin_html_is_self_contained(paths, tmp_path):
    out = tmp_path / "report.html"
    assert main(["margin", *paths, "--format", "html", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert text.count("data:image/png;base64,") >= 14  # P&L and components per account
    assert not re.search(r"(src|href)=\"(https?:)?//", text)
    assert "<script src" not in text  # one inline script (sortable tables), nothing loaded from outside


def test_explain_whatif_and_models(paths, capsys, tmp_path):
    assert main(["margin", *paths, "--explain", "MM-CRYPTO"]) == 0
    out = capsys.readouterr().out
    assert "Account MM-CRYPTO" in out and "Isolated" in out
    trades = tmp_path / "trades.csv"
    book([row("BTC-COVCALL", "BTC", "option", "put", 90000, 1, -2, 1, "inverse")]).to_csv(trades, index=False)
    assert main(["whatif", *paths, "--model", "greeks-default", "--trades", str(trades), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["account"] for r in rows] == ["BTC-COVCALL"]
    assert rows[0]["im_before"] > 0 and rows[0]["im_after"] > 0 and rows[0]["im_after"] != rows[0]["im_before"]
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "greeks-default" in out and "tims-pm" in out and "deribit-sm" in out


def test_bad_model_is_an_exit_2_with_the_key(paths, capsys, tmp_path):
    from greeksmargin.engine.models import models_dir

    bad = tmp_path / "typo.toml"
    bad.write_text((models_dir() / "deribit-sm.toml").read_text().replace("im_base", "im_bse"))
    assert main(["margin", *paths, "--model", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "typo.toml" in err and "components.option_standard.im_bse" in err


def test_shared_html_helpers_embed_figures_and_escape():
    from greeksmargin.reports.html import embed_figure, new_figure, render_page, table_html

    fig, ax = new_figure()
    ax.plot([0, 1], [1, 0])
    img = embed_figure(fig, alt="a <line>")
    assert img.startswith('<img alt="a &lt;line&gt;" src="data:image/png;base64,')
    page = render_page("T & co", [{"title": "x < y", "html": img + table_html(pd.DataFrame({"a": [1.5]}))}])
    assert "<title>T &amp; co</title>" in page and "x &lt; y" in page and img in page
    assert "<table" in page
