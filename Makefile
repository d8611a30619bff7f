# The README's commands. Each target sets up what it needs (virtual environment, pinned
# packages); tests start and stop their own Prefect server, Dask cluster and SeaweedFS.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
DEMO_ARGS ?=

.PHONY: help venv demo test test-all lint typecheck fmt clean server-stop

help:
	@echo "make demo   synthesise a small cohort and release it to ./demo/release (local Prefect + Dask)"
	@echo "make test   run the test suite (starts its own Prefect server, Dask cluster, SeaweedFS)"
	@echo "make lint   ruff + mypy"

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip==25.3
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(VENV)/bin/slidegate demo $(DEMO_ARGS)

test: venv
	$(PY) -m pytest

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy slidegate tasks flows

fmt: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

server-stop: venv
	$(VENV)/bin/slidegate server stop

clean:
	rm -rf demo .slidegate .pytest_cache .mypy_cache .ruff_cache
