"""Margin methodologies: one module (or sub-package) each, rule code on parameters, reading no file.

* :mod:`~greeksmargin.methodologies.house`: the house Greeks-plus-stress rule set (scan, sensitivity,
  contingency, combine), which the engine also uses for Deribit SM and TIMS PM model files;
* :mod:`~greeksmargin.methodologies.deribit_pm`, :mod:`~greeksmargin.methodologies.derive_pm2`,
  :mod:`~greeksmargin.methodologies.span`, :mod:`~greeksmargin.methodologies.simm`,
  :mod:`~greeksmargin.methodologies.strategy`: the exchanges' and ISDA's own methodologies.

:data:`BOOK_ADAPTED` is the hand-written table of the methodologies (as a model file's ``[meta]
methodology`` spells them) that run on a positions book through a book adapter of
:mod:`greeksmargin.engine.adapters`; the engine checks that its adapter table matches it.
"""

from __future__ import annotations

BOOK_ADAPTED: frozenset[str] = frozenset(
    {
        "simm", "span", "deribit_pm", "deribit-pm", "derive_pm2", "derive-pm2", "derive_srm", "derive-srm",
        "cboe-strategy",
    }
)
