"""Group reductions shared by the risk kernels and the scan rules: sums over contiguous groups, worst loss."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["group_sum", "scan_loss"]


def group_sum(values: NDArray[np.float64], starts: NDArray[np.intp]) -> NDArray[np.float64]:
    """Sum the last axis of ``values`` over contiguous groups.

    Parameters
    ----------
    values : ndarray of shape (..., n)
        Values of positions sorted by group.
    starts : ndarray of shape (n_groups,)
        Index of the first position of each group (increasing, first 0; every group non-empty).

    Returns
    -------
    ndarray of shape (..., n_groups)
        Group sums.
    """
    if values.shape[-1] == 0:
        return np.zeros(values.shape[:-1] + (0,))
    return np.add.reduceat(values, starts, axis=-1)


def scan_loss(
    pnl: NDArray[np.float64], weights: NDArray[np.float64], gain_offset: float = 1.0
) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """Worst weighted loss per group.

    Parameters
    ----------
    pnl : ndarray of shape (n_scenarios, n_groups)
        Group P&L per scenario (margin currency; losses negative).
    weights : ndarray of shape (n_scenarios,) or (n_scenarios, n_groups)
        Scenario weights.
    gain_offset : float
        Factor applied to gains (1 full offset, 0 none).

    Returns
    -------
    loss : ndarray of shape (n_groups,)
        ``max(0, -min_s w_s q_s)`` (>= 0).
    worst : ndarray of shape (n_groups,)
        Index of the worst scenario.
    """
    w = weights if weights.ndim == 2 else weights[:, None]
    # full offset of gains (x 1.0 is exact): no select
    q = (pnl if gain_offset == 1.0 else np.where(pnl > 0, pnl * gain_offset, pnl)) * w
    if q.shape[0] == 0:
        return np.zeros(q.shape[1]), np.zeros(q.shape[1], dtype=np.intp)
    worst = np.argmin(q, axis=0)
    loss = np.maximum(0.0, -np.take_along_axis(q, worst[None, :], axis=0)[0])
    return loss, worst
