# The two commands: `make demo` (the main job on the embedded digits data) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,progress]' torch==2.13.0
	rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)
	$(PY) -m mlpnumpy train --out runs/train          # the main job on the embedded default (digits)
	$(PY) -m mlpnumpy demo --out runs/demo            # the seed's flow and figure, runs/demo/mlp_result.png

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/bench_training.py --time-to-accuracy   # writes benchmarks/results.{json,md}
	$(PY) benchmarks/limits.py                               # what a NumPy step cannot go below

clean:
	rm -rf $(VENV) runs .pytest_cache
