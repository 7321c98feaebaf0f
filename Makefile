# greeksmargin: `make demo` and `make test` each create .venv when missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint typecheck validate clean

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

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
