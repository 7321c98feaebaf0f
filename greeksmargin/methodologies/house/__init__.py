"""Margin rule components and their combination.

Every component works on arrays of positions sorted by *risk unit* (one account x one underlying) and
returns one amount per unit (or per position when each position is margined alone), in the account's
margin currency; :func:`greeksmargin.methodologies.house.tidy.component_rows` turns them into tidy rows
``(account, underlying, rule, component, amount, currency)``.

* :mod:`~greeksmargin.methodologies.house.scan`: worst weighted loss over a scenario grid, gains offset by a factor;
  offsets between classes of a product group (TIMS).
* :mod:`~greeksmargin.methodologies.house.sensitivity`: delta, short gamma, vega by expiry bucket.
* :mod:`~greeksmargin.methodologies.house.contingency`: short option minimum, per-contract floor, roll/basis charge,
  long-premium cap, exchange standard (isolated) option and delta-one charges.
* :mod:`~greeksmargin.methodologies.house.combine`: the combination expression (``max``, ``min``, ``+``, ``*``), the
  IM/MM relation and aggregation across underlyings (sum, correlation matrix, group offsets).

Reductions per group use ``np.add.reduceat`` / ``np.bincount`` over sorted group codes: there is no
Python loop per account. Other methodologies (SIMM, SPAN, Derive PM2, Deribit PM) have their own
modules in this package.
"""
