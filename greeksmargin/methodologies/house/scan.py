"""Scenario scan: worst weighted loss of a group of positions over a scenario grid.

For a group (a risk unit) with P&L ``p_s = sum_i p_is`` in scenario ``s``::

    q_s = p_s            if p_s <= 0   (losses unchanged)
    q_s = gain_offset p_s if p_s > 0   (gains offset by a factor, Deribit ``pnl_offset``)
    scan = max(0, -min_s w_s q_s)      (w_s the scenario weight; tails at a fraction)

``q`` is concave and positively homogeneous in the positions, so the scan of a group never exceeds the
sum of the scans of its positions (cross <= isolated) and scales linearly with the quantities.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from greeksmargin.risk.reduce import group_sum, scan_loss

__all__ = ["group_sum", "offset_scan", "scan_loss"]


def offset_scan(
    unit_pnl: NDArray[np.float64],
    weights: NDArray[np.float64],
    class_group: NDArray[np.intp],
    offset_pct: NDArray[np.float64],
    n_groups: int,
) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """Scan with partial offsets between classes of a product group (OCC TIMS).

    Within a class (one underlying) gains offset losses fully (``unit_pnl`` is already net); across the
    classes of a product group only ``offset_pct`` of the gains count::

        L_gs = sum_{c in g} min(p_cs, 0) + pct_g sum_{c in g} max(p_cs, 0)
        scan_g = max(0, -min_s w_s L_gs)

    Parameters
    ----------
    unit_pnl : ndarray of shape (n_scenarios, n_units)
        Class P&L per scenario.
    weights : ndarray of shape (n_scenarios,) or (n_scenarios, n_units)
        Scenario weights (the weight of a group's scenario is taken from its first class).
    class_group : ndarray of shape (n_units,)
        Group code of each class (account x product group), in ``0..n_groups-1``.
    offset_pct : ndarray of shape (n_units,)
        Offset percentage (0..1) of each class's product group.
    n_groups : int
        Number of groups.

    Returns
    -------
    loss : ndarray of shape (n_groups,)
        Scan per group (>= 0).
    worst : ndarray of shape (n_groups,)
        Worst scenario per group.
    """
    n_s = unit_pnl.shape[0]
    part = np.minimum(unit_pnl, 0.0) + offset_pct[None, :] * np.maximum(unit_pnl, 0.0)
    L = np.zeros((n_s, n_groups))
    if n_s:
        np.add.at(L.T, class_group, part.T)
    w = weights if weights.ndim == 1 else weights[:, np.unique(class_group, return_index=True)[1]]
    return scan_loss(L, w, 1.0)
