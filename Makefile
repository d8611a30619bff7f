# The README's commands. Each target sets up what it needs (virtual environment, pinned
# packages); tests start and stop their own Prefect server, Dask cluster and SeaweedFS.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
DEMO_ARGS ?=

.PHONY: help venv receiver-venv readers-venv postgres demo test test-all lint typecheck fmt clean server-stop bench serve serve-stop screenshot

help:
	@echo "make demo   synthesise a small cohort and release it to ./demo/release (local Prefect + Dask)"
	@echo "make test   run the test suite (starts its own Prefect server, Dask cluster, SeaweedFS)"
	@echo "make test-all  the test suite plus the slow-marked suites"
	@echo "make lint   ruff + mypy"
	@echo "make serve  local Prefect server + work pool + worker + scheduled deployments (make serve-stop)"
	@echo "make bench  conversion benchmark (T0-T5 and the slide stage on tissue, ~35 min; BENCH_ARGS=\"--t4 --reps 2\") -> BENCHMARKS.md"

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip==25.3
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# PostgreSQL (Debian's package) for the registry tests, which start their own server
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; }

venv: $(STAMP) postgres

demo: venv
	$(VENV)/bin/slidegate demo $(DEMO_ARGS)

ORACLE := .venv-oracle
ORACLE_STAMP := $(ORACLE)/.installed-stamp

$(ORACLE_STAMP): tests/oracle-requirements.txt
	$(PYTHON) -m venv $(ORACLE)
	$(ORACLE)/bin/pip install -q -r tests/oracle-requirements.txt
	touch $(ORACLE_STAMP)

# ome-zarr-py, the reference reader of the portable output: its pydantic pin clashes with ours
OMEZARR := .venv-omezarr
OMEZARR_STAMP := $(OMEZARR)/.installed-stamp

$(OMEZARR_STAMP): tests/omezarr-requirements.txt
	$(PYTHON) -m venv $(OMEZARR)
	$(OMEZARR)/bin/pip install -q -r tests/omezarr-requirements.txt
	touch $(OMEZARR_STAMP)

# a receiver's venv: zarr + the receiver distribution (receiver/), nothing else
RECEIVER := .venv-receiver
RECEIVER_STAMP := $(RECEIVER)/.installed-stamp

$(RECEIVER_STAMP): receiver/pyproject.toml $(wildcard receiver/src/slidegate_receiver/*.py) constraints.txt
	rm -rf $(RECEIVER)
	$(PYTHON) -m venv $(RECEIVER)
	$(RECEIVER)/bin/pip install -q -c constraints.txt ./receiver
	touch $(RECEIVER_STAMP)

receiver-venv: $(RECEIVER_STAMP)

# readers of a release next to zarr + the receiver: dask, ome-zarr-py, ngff-zarr, ome-zarr-models
READERS := .venv-readers
READERS_STAMP := $(READERS)/.installed-stamp

$(READERS_STAMP): tests/readers-requirements.txt receiver/pyproject.toml $(wildcard receiver/src/slidegate_receiver/*.py)
	rm -rf $(READERS)
	$(PYTHON) -m venv $(READERS)
	$(READERS)/bin/pip install -q -r tests/readers-requirements.txt ./receiver
	touch $(READERS_STAMP)

readers-venv: $(READERS_STAMP)

test: venv $(ORACLE_STAMP) $(OMEZARR_STAMP) $(RECEIVER_STAMP) $(READERS_STAMP)
	SLIDEGATE_PYCANON_PYTHON=$(CURDIR)/$(ORACLE)/bin/python \
	SLIDEGATE_RECEIVER_PYTHON=$(CURDIR)/$(RECEIVER)/bin/python \
	SLIDEGATE_READERS_PYTHON=$(CURDIR)/$(READERS)/bin/python \
	SLIDEGATE_OMEZARR_PYTHON=$(CURDIR)/$(OMEZARR)/bin/python $(PY) -m pytest

# the default run plus the slow-marked suites (large fuzz runs, scale cases); not the ui test
test-all: venv $(ORACLE_STAMP) $(OMEZARR_STAMP) $(RECEIVER_STAMP) $(READERS_STAMP)
	SLIDEGATE_PYCANON_PYTHON=$(CURDIR)/$(ORACLE)/bin/python \
	SLIDEGATE_RECEIVER_PYTHON=$(CURDIR)/$(RECEIVER)/bin/python \
	SLIDEGATE_READERS_PYTHON=$(CURDIR)/$(READERS)/bin/python \
	SLIDEGATE_OMEZARR_PYTHON=$(CURDIR)/$(OMEZARR)/bin/python $(PY) -m pytest -m 'not ui'

# opt-in benchmark (bench/run.py): inputs generated at run time into bench/work/
BENCH_ARGS ?= --t4 --stages --t5
bench: venv
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,bench]'
	$(PY) -m bench.run $(BENCH_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy slidegate tasks flows

fmt: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# one machine, scheduled: server, process work pool, worker, deploy/prefect.yaml (SERVE_ARGS:
# --collection SPEC, --work-dir DIR); stop with `make serve-stop`
SERVE_ARGS ?=
serve: venv
	$(VENV)/bin/slidegate serve $(SERVE_ARGS)

serve-stop: venv
	$(VENV)/bin/slidegate serve --stop $(SERVE_ARGS)

# opt-in UI test: needs Debian's chromium (apt-get install chromium); refreshes docs/*.png
screenshot: venv
	SLIDEGATE_SCREENSHOT_DIR=docs $(PY) -m pytest -m ui tests/ui

server-stop: venv
	$(VENV)/bin/slidegate server stop

clean:
	rm -rf demo .slidegate .pytest_cache .mypy_cache .ruff_cache
