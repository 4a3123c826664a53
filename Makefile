# The two commands: `make demo` (the main job on the embedded digits data) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# One .venv, two install stamps: `make demo` installs only what the main job needs; `make test` adds
# the test stack (and torch for the parity tests) to the same .venv. A stamp is named after
# pyproject.toml's checksum, so editing pyproject.toml reinstalls.
HASH := $(shell cat pyproject.toml | cksum | cut -d' ' -f1)
DEMO_EXTRAS := plot,progress,fast
TEST_EXTRAS := test,progress,fast,sweep
TORCH := torch==2.13.0
DEMO_STAMP := $(VENV)/.installed-demo-$(HASH)
TEST_STAMP := $(VENV)/.installed-test-$(HASH)

.DEFAULT_GOAL := help
.PHONY: help demo test bench clean clean-runs

help:  ## list the targets (the default goal)
	@echo "make targets:"
	@awk -F':.*## ' '/^[a-z][a-z-]*:.*## / {printf "  make %-11s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(DEMO_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[$(DEMO_EXTRAS)]'
	rm -f $(VENV)/.installed-demo-* && touch $@

$(TEST_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[$(TEST_EXTRAS)]' $(TORCH)
	rm -f $(VENV)/.installed-test-* && touch $@

demo: $(DEMO_STAMP)  ## install mlpnumpy[plot,progress,fast] into .venv; train on the digits: runs/train, runs/demo
	$(PY) -m mlpnumpy train --out runs/train --overwrite   # the main job on the embedded default (digits)
	$(PY) -m mlpnumpy demo --out runs/demo            # the seed's flow and figure, runs/demo/mlp_result.png

test: $(TEST_STAMP)  ## add the test stack and torch to .venv; run the whole test suite
	$(PY) -m pytest -q

bench: $(TEST_STAMP)  ## the speed benchmark (needs the test stack: torch, scikit-learn)
	$(PY) benchmarks/bench_training.py --time-to-accuracy   # writes benchmarks/results.{json,md}
	$(PY) benchmarks/limits.py                               # what a NumPy step cannot go below

clean:  ## remove .venv and caches; keeps runs/ (your run folders)
	rm -rf $(VENV) .pytest_cache .hypothesis
	find . -name __pycache__ -type d -not -path './.git/*' -prune -exec rm -rf {} +
	@if [ -d runs ]; then echo "kept runs/ (your run folders); 'make clean-runs' deletes them"; fi

clean-runs:  ## delete runs/, every run folder make demo or mlpnumpy train wrote there
	@echo "deleting runs/ (every run folder in it)"
	rm -rf runs
