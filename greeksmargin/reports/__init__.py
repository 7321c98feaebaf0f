"""Reports: HTML/Markdown rendering with plots, the only part of greeksmargin that draws.

Shared helpers live in :mod:`greeksmargin.reports.html` (``embed_figure``, ``render_page``); each report
module (``margin``, ``validation``, ...) builds its sections and renders them into one self-contained page.
"""
