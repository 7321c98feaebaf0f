"""Output files: the user's umask, atomic writes with no leftovers, symlinks followed, special files refused."""

import os
import stat

import pandas as pd
import pytest

from greeksmargin import io
from greeksmargin.errors import InputError


@pytest.fixture
def umask():
    def set_mask(mask):
        old = os.umask(mask)
        masks.append(old)

    masks: list[int] = []
    yield set_mask
    for m in reversed(masks):
        os.umask(m)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_new_files_honour_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    assert io.current_umask() == mask
    for p in (io.write_text("x", tmp_path / "a.txt"), io.write_json({"a": 1}, tmp_path / "a.json"),
              io.write_table(pd.DataFrame({"a": [1]}), tmp_path / "a.csv"),
              io.write_table(pd.DataFrame({"a": [1]}), tmp_path / "a.parquet")):
        assert stat.S_IMODE(p.stat().st_mode) == expected, p


def test_replacing_a_file_keeps_its_mode(tmp_path, umask):
    umask(0o022)
    p = tmp_path / "r.txt"
    p.write_text("old")
    p.chmod(0o640)
    io.write_text("new", p)
    assert p.read_text() == "new" and stat.S_IMODE(p.stat().st_mode) == 0o640


def test_no_temporary_file_left_on_an_exception_or_interrupt(tmp_path, monkeypatch):
    p = tmp_path / "out.txt"
    p.write_text("before")

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        io.write_text("after", p)
    assert p.read_text() == "before"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["out.txt"]


def test_symlink_is_followed(tmp_path):
    target = tmp_path / "real.txt"
    target.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    io.write_text("new", link)
    assert link.is_symlink() and target.read_text() == "new"


def test_special_files_and_folders_are_refused(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="special file"):
        io.write_text("x", fifo)
    with pytest.raises(InputError, match="is a folder"):
        io.write_text("x", tmp_path)


@pytest.mark.parametrize("out, given, expected", [
    ("r.csv", None, "csv"), ("r.json", None, "json"), ("r.html", None, "html"), ("r.parquet", None, "parquet"),
    ("r.csv", "csv", "csv"), (None, None, "table"), (None, "json", "json"), ("r.out", "csv", "csv"),
])
def test_output_format_follows_the_extension(out, given, expected):
    assert io.output_format(out, given, ("table", "csv", "json", "html", "parquet")) == expected


def test_output_format_conflict_and_unsupported_are_errors():
    with pytest.raises(InputError, match="conflicts with the extension"):
        io.output_format("x.parquet", "csv", ("table", "csv", "parquet"))
    with pytest.raises(InputError, match="does not write parquet"):
        io.output_format("x.parquet", None, ("table", "csv", "json"))
