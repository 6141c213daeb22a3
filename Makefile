# Two commands do everything on a fresh clone: `make test` and `make demo`.
# The virtual environment is created on first use and reused afterwards (a stamp file records
# that the install of the current setup.cfg finished).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.spikeclip-installed
# lava-nc 0.10.0 and lava-dl 0.6.0 are archived upstream and declare python<3.11 and torch<2.4;
# they run here with their real run-time needs (listed in setup.cfg) and the import shim in
# export/lava/compat.py.
LAVA   := lava-nc==0.10.0 lava-dl==0.6.0
# sinabs 3.1.3 pins nir<=1.0.4 and requires samna (hardware tools); it imports and its NIR
# import/export work with nir 1.0.8 and without samna (export/nir/FOREIGN.md), so --no-deps.
SINABS := sinabs==3.1.3

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: test demo lint setup clean-venv bench

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -U pip setuptools wheel
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --ignore-requires-python $(LAVA)
	$(PY) -m pip install -q --disable-pip-version-check --no-deps $(SINABS)
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest

demo: $(STAMP)
	$(PY) -m export.cli.demo

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) benchmarks/bench_simulator.py

clean-venv:
	rm -rf $(VENV)
