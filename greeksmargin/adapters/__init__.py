"""Exchange formats in -> the product's own tables.

* :mod:`greeksmargin.adapters.names`: instrument names of Deribit, OKX, Bybit and Derive parsed into one
  record (and formatted back).
* :mod:`greeksmargin.adapters.deribit`: Deribit API v2 JSON-RPC responses (positions, instruments, book
  summaries, account summaries, index) and raw option-chain tickers -> positions, market snapshot,
  collateral and exchange-margin tables.
* :mod:`greeksmargin.adapters.orders`: open orders -> the trade tables of a what-if.

This layer may import ``errors``, ``units``, ``io``, ``pricing`` and the public loaders; nothing above.
"""
