"""Batch margin over a Parquet dataset (greeksmargin.engine.batch): Dask (LocalCluster on 127.0.0.1) == in process."""

from __future__ import annotations

import pandas as pd
import pytest

from greeksmargin.datasets import load_example_book
from greeksmargin.engine.batch import margin_dataset, write_dataset
from greeksmargin.engine.margin import compute_margin
from greeksmargin.errors import InputError
from greeksmargin.solvency.population import generate_population


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    pos, _ = generate_population(60, seed=5)
    path = tmp_path_factory.mktemp("book")
    files = write_dataset(pos, path, accounts_per_file=13)
    assert len(files) == 5
    return path, pos, load_example_book().market


def test_in_process_equals_compute_margin(dataset):
    path, pos, mk = dataset
    got = margin_dataset(path, mk, "greeks-default", partition_size=40)
    want = compute_margin(pos, mk, "greeks-default").accounts
    assert list(got["account"]) == sorted(pos["account"].unique())
    pd.testing.assert_frame_equal(got, want.reset_index(drop=True), check_exact=False, rtol=1e-12)


def test_dask_local_cluster_equals_in_process(dataset):
    distributed = pytest.importorskip("distributed")
    path, _, mk = dataset
    local = margin_dataset(path, mk, "greeks-default")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                                  processes=True) as cluster, distributed.Client(cluster) as client:
        on_dask = margin_dataset(path, mk, "greeks-default", client=client)
        by_address = margin_dataset(path, mk, "greeks-default", scheduler=cluster.scheduler_address)
    pd.testing.assert_frame_equal(on_dask, local)  # identical, not merely close
    pd.testing.assert_frame_equal(by_address, local)


def test_hive_folders_and_errors(tmp_path):
    ex = load_example_book()
    pos = ex.positions
    for acc, sub in pos.groupby("account"):
        (tmp_path / f"account={acc}").mkdir()
        sub.drop(columns="account").to_parquet(tmp_path / f"account={acc}" / "p.parquet")
    got = margin_dataset(tmp_path, ex.market)
    want = compute_margin(pos, ex.market).accounts
    pd.testing.assert_frame_equal(got[["account", "im", "mm"]], want[["account", "im", "mm"]].reset_index(drop=True))
    dup = tmp_path / "dup"
    write_dataset(pos, dup / "a")
    write_dataset(pos, dup / "b")
    with pytest.raises(InputError, match="two partitions"):
        margin_dataset(dup, ex.market)
    with pytest.raises(InputError, match="no such"):
        margin_dataset(tmp_path / "missing", ex.market)


def test_cli_margin_on_a_dataset_folder_in_process_and_on_dask(dataset, tmp_path):
    distributed = pytest.importorskip("distributed")
    from greeksmargin.cli import main
    from greeksmargin.datasets import example_paths

    path, pos, _ = dataset
    market = str(example_paths()["market"])
    here, there = tmp_path / "here.csv", tmp_path / "there.csv"
    assert main(["margin", str(path), market, "--scheduler", "none", "--format", "csv", "--out", str(here)]) == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                                  processes=True) as cluster:
        assert main(["margin", str(path), market, "--scheduler", cluster.scheduler_address, "--format", "csv",
                     "--out", str(there)]) == 0
    a, b = pd.read_csv(here), pd.read_csv(there)
    pd.testing.assert_frame_equal(a, b)
    assert list(a["account"]) == sorted(pos["account"].unique()) and (a["im"] >= 0).all()
    # --scheduler with a single positions file is refused with a clear message
    assert main(["margin", str(example_paths()["positions"]), market, "--scheduler", "none"]) == 2
