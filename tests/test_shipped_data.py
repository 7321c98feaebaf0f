"""Shipped models and published cases are found from any working folder; local model files come first."""

import shutil

import pytest

from greeksmargin import io
from greeksmargin.cli import main
from greeksmargin.datasets import example_paths
from greeksmargin.engine.models import load_model, models_dir
from greeksmargin.errors import InputError


def test_shipped_folders_exist_from_another_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (io.shipped_folder("models") / "greeks-default.toml").is_file()
    assert (io.shipped_folder("validation/cases") / "span" / "cases.json").is_file()
    assert models_dir() == io.shipped_folder("models")
    with pytest.raises(InputError, match="unknown shipped folder"):
        io.shipped_folder("tests")


def test_model_name_resolves_in_the_working_folder_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_model("span").file.endswith("span.toml")
    assert str(io.shipped_folder("models")) in load_model("span").file
    (tmp_path / "models").mkdir()
    shutil.copy(io.shipped_folder("models") / "span.toml", tmp_path / "models" / "mine.toml")
    assert io.find_model_file("mine") == tmp_path / "models" / "mine.toml"
    shutil.copy(io.shipped_folder("models") / "span.toml", tmp_path / "mine.toml")
    assert io.find_model_file("mine") == tmp_path / "mine.toml"  # ./NAME.toml before ./models/NAME.toml
    assert load_model("mine").file == str(tmp_path / "mine.toml")
    shutil.copy(io.shipped_folder("models") / "deribit-sm.toml", tmp_path / "span.toml")
    assert load_model("span").file == str(tmp_path / "span.toml")  # a local file shadows a shipped name


def test_validate_and_margin_from_another_folder(tmp_path, monkeypatch, capsys):
    p = example_paths()
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "span", "--quiet"]) == 0
    assert "span: 2 passed, 0 failed" in capsys.readouterr().out
    assert main(["margin", str(p["positions"]), str(p["market"]), "--model", "deribit-sm"]) == 0
    assert "deribit-sm" in capsys.readouterr().out


def test_simm_version_resolves_to_the_shipped_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    f = io.shipped_simm_file("2.5")
    assert f.endswith("simm-2.5.toml") and str(io.shipped_folder("models")) in f
    assert io.shipped_simm_file("9.9") == "9.9"  # unknown: left for the loader's own error


def test_the_wheel_lists_every_package_and_ships_models_and_cases():
    """pyproject's explicit package list covers every folder of greeksmargin/ with an __init__.py, and maps the
    top-level models/ and validation/cases/ into the wheel as greeksmargin/_shipped/ (no setup.py)."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    cfg = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    on_disk = {".".join(p.parent.relative_to(root).parts) for p in (root / "greeksmargin").rglob("__init__.py")}
    assert on_disk <= listed, sorted(on_disk - listed)
    assert cfg["package-dir"] == {"greeksmargin._shipped.models": "models",
                                  "greeksmargin._shipped.validation.cases": "validation/cases"}
    data = cfg["package-data"]
    assert data["greeksmargin._shipped.models"] == ["*.toml"]
    # every case file sits at most one folder deep, which the "*/*" pattern ships
    cases = root / "validation" / "cases"
    assert all(len(f.relative_to(cases).parts) <= 2 for f in cases.rglob("*") if f.is_file())
    assert not (root / "setup.py").exists()
