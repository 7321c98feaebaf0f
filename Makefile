# greeksmargin: `make demo` and `make test` each create .venv when missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint typecheck validate reports clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/greeksmargin demo

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

lint: $(STAMP)
	$(VENV)/bin/ruff check greeksmargin tests benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy greeksmargin

validate: $(STAMP)
	$(VENV)/bin/greeksmargin validate all

# every HTML report kind on the bundled data, and where Chromium is installed a 1400-px-wide screenshot of
# each page; all under $(GALLERY) (git-ignored)
GALLERY ?= build/reports
GM      ?= $(VENV)/bin/greeksmargin
DATA    := greeksmargin/datasets/data
BOOK    := $(DATA)/example_positions.csv $(DATA)/example_market.json
CHROMIUM ?= $(shell command -v chromium || command -v chromium-browser || command -v google-chrome)

reports: $(STAMP)
	mkdir -p $(GALLERY)/shots
	$(GM) -q margin $(BOOK) --collateral $(DATA)/example_collateral.csv --out $(GALLERY)/margin.html
	$(GM) -q margin $(BOOK) --model deribit-pm --out $(GALLERY)/margin_deribit_pm.html
	$(GM) -q solvency $(BOOK) --collateral $(DATA)/example_collateral.csv --out $(GALLERY)/solvency.html
	$(GM) -q liquidate $(BOOK) --collateral $(DATA)/example_collateral.csv --account SPX-NAKEDPUT --move SPX=-0.05 \
	    --out $(GALLERY)/liquidation.html
	$(GM) -q population --accounts 1000 --seed 0 --out $(GALLERY)/population > /dev/null
	$(GM) -q cascade $(GALLERY)/population/positions.csv $(GALLERY)/population/market.json \
	    --collateral $(GALLERY)/population/collateral.csv --shock -0.25 --underlying BTC --out $(GALLERY)/cascade.html
	$(GM) -q compare $(BOOK) --model deribit-pm --exchange-margin $(DATA)/example_exchange_margin.csv \
	    --out $(GALLERY)/compare.html
	$(GM) -q sidebyside $(BOOK) --out $(GALLERY)/sidebyside.html
	$(GM) -q validate all --html $(GALLERY)/validation.html > /dev/null
	$(GM) -q calibrate btc --confidence 0.99 --mpor 2 --out $(GALLERY)/calibrated.toml --html $(GALLERY)/calibration.html \
	    > /dev/null
	$(GM) -q backtest sp500 --model greeks-default --step 5 --html $(GALLERY)/backtest.html > /dev/null
	@if [ -n "$(CHROMIUM)" ]; then \
	  for f in $(GALLERY)/*.html; do \
	    n=$$(basename $$f .html); \
	    "$(CHROMIUM)" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,2200 \
	      --screenshot=$(GALLERY)/shots/$$n.png "file://$$(realpath $$f)" > /dev/null 2>&1 && echo "shot $(GALLERY)/shots/$$n.png"; \
	  done; \
	else echo "Chromium not found: pages in $(GALLERY), no screenshots"; fi

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
