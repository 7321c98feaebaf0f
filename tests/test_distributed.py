import time

import numpy as np
import pandas as pd
import pytest

from greeksmargin.calibration.history import load_history
from greeksmargin.calibration.sweep import sweep_point
from greeksmargin.engine.distributed import expand_grid, get_client, run_sweep
from greeksmargin.errors import ComputationError


def _square(x, y, offset):
    return {"value": x * x + y + offset.sum(), "label": f"{x}-{y}"}


def test_expand_grid_order():
    g = expand_grid(a=[1, 2], b=["x", "y", "z"])
    assert g[0] == {"a": 1, "b": "x"} and g[1] == {"a": 1, "b": "y"} and len(g) == 6


def test_serial_sweep_and_errors():
    t = run_sweep(expand_grid(x=[1, 2], y=[3]), _square, "serial", progress=False,
                  fn_kwargs={"offset": np.zeros(3)})
    assert list(t.columns) == ["x", "y", "value", "label"] and t["value"].tolist() == [4.0, 7.0]
    with pytest.raises(ComputationError, match="mapping"):
        run_sweep([{"x": 1}], lambda x: 3, "serial", progress=False)


@pytest.mark.parametrize("processes", [False, True])
def test_calibration_sweep_dask_equals_serial(processes):
    """The calibration sweep on a local Dask cluster (127.0.0.1, 2 workers) gives the serial table exactly."""
    hist = load_history("sp500")
    grid = expand_grid(confidence=[0.975, 0.99], mpor=[1, 2], lam=[0.94, 0.97], model=["greeks-default"])
    kw = {"history": hist, "method": "fhs", "step": 5, "margin": "stress-grid"}
    t0 = time.perf_counter()
    serial = run_sweep(grid, sweep_point, "serial", progress=False, fn_kwargs=kw)
    t1 = time.perf_counter()
    with get_client(processes=processes) as client:
        assert all(w.startswith("tcp://127.0.0.1") for w in client.scheduler_info()["workers"])
        assert len(client.scheduler_info()["workers"]) == 2
        dask = run_sweep(grid, sweep_point, progress=True, client=client, fn_kwargs=kw)
    t2 = time.perf_counter()
    pd.testing.assert_frame_equal(dask, serial, check_exact=True)
    assert len(serial) == 8 and (serial["price_shock_down"] > 0).all()
    # FHS shocks change with lambda, HS-type quantile inputs with c and h
    assert serial.groupby("lam")["price_shock_down"].mean().nunique() == 2
    print(f"serial {t1 - t0:.2f} s, dask processes={processes} (incl. cluster start) {t2 - t1:.2f} s")


def test_sweep_on_existing_scheduler_address():
    grid = expand_grid(x=[1, 2, 3], y=[0, 1])
    kw = {"offset": np.ones(2)}
    serial = run_sweep(grid, _square, "serial", progress=False, fn_kwargs=kw)
    with get_client(processes=False) as cluster_client:
        address = cluster_client.scheduler.address
        assert address.startswith("tcp://127.0.0.1:")
        remote = run_sweep(grid, _square, scheduler=address, progress=False, fn_kwargs=kw)
    pd.testing.assert_frame_equal(remote, serial, check_exact=True)
