# Every target works from a fresh clone on a machine with only python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-bench
PYTEST_WORKERS ?= 2
LINT_PATHS := $(wildcard optrun cli tests bench examples docs/hooks)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install test test-slow lint typecheck unit docs docs-serve bench demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install optrun with the dev tools

lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: install
	$(BIN)/mypy

# tests/v1 runs three times: in the main run (tf.Graph().as_default() with eager on), then
# under disable_v2_behavior() (reference variables) and disable_eager_execution() alone.
# Tests run with TensorFlow's C++ log off (the CLI's own default; xdist's workers may import
# TensorFlow before a conftest could set it).
unit: export TF_CPP_MIN_LOG_LEVEL ?= 3
unit: install
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile
	OPTRUN_TF1_MODE=v1 $(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile tests/v1
	OPTRUN_TF1_MODE=no_eager $(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile tests/v1

test: lint typecheck unit docs  ## ruff, mypy, pytest and the docs site (mkdocs build --strict)

test-slow: export TF_CPP_MIN_LOG_LEVEL ?= 3
test-slow: install  ## the fault-injection suite: real processes, signals, kills, races, hostile input
	$(BIN)/pytest -q -m slow -n $(PYTEST_WORKERS) --dist loadfile tests/slow

# --strict: a broken link or anchor, a page missing from the nav, or a docstring that does
# not match its signature fails the build. The reference pages are generated from the code
# (docs/hooks/), so they cannot drift from it.
docs docs-serve: export TF_CPP_MIN_LOG_LEVEL ?= 3
docs docs-serve: export NO_MKDOCS_2_WARNING := 1
docs: install  ## build the documentation site into site/ (mkdocs build --strict)
	$(BIN)/mkdocs build --strict --site-dir site

docs-serve: install  ## serve the documentation site at http://127.0.0.1:8000, rebuilt on every edit
	$(BIN)/mkdocs serve

$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q -e '.[bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)  ## optrun vs numpy/scipy vs GPflow, ratios in one run
	$(BENCH_VENV)/bin/python -m bench

demo: install  ## the built-in defaults: the seed's constrained example, then a short training run
	$(BIN)/optrun minimize --method SLSQP --force
	$(BIN)/optrun train --force

clean:
	rm -rf $(VENV) $(BENCH_VENV) build site *.egg-info .pytest_cache .mypy_cache .ruff_cache
