# spikeformer — make demo | make test | make test-all | make bench
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
# Numba and torch: do not oversubscribe the 2 CI cores.
export OMP_NUM_THREADS ?= 2

.PHONY: install demo test test-all bench clean

install: $(STAMP)

$(STAMP): setup.cfg constraints.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip wheel setuptools
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[lava,test,bench]'
	$(PIP) install --quiet --no-deps --ignore-requires-python lava-nc==0.10.0 lava-dl==0.6.0
	$(PY) -c "import loihi_export.compat as c; c.apply(); import lava.magma.core.run_configs; c.import_netx()"
	touch $(STAMP)

DEMO_DIR ?= runs/demo
demo: install
	$(VENV)/bin/spikeformer demo --out $(DEMO_DIR)

test: install
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

test-all: install
	$(PY) -m pytest -q -m "not bench"

bench: install    # each benchmark file in its own process: one file's memory does not slow or inflate the next
	@fail=0; for f in benchmarks/test_bench_*.py; do $(PY) -m pytest -q -m bench -s $$f || fail=1; done; exit $$fail

clean:
	rm -rf $(VENV) runs .pytest_cache
