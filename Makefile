# Arbitrage Sniper. `make run` and `make test` work on a fresh machine with Python 3.11.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint style types install demo-capture bench clean

# The virtualenv, with the pinned runtime and test requirements; redone when they change.
$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

# The live processes come with the next issue; for now: a replay of the bundled demo capture.
run: $(STAMP)
	@echo "The live system (simulator, ingestor, engine, dashboard) comes next."
	@echo "Replaying the bundled demo capture (demo/demo_capture.jsonl): signals on stdout, counts on stderr."
	$(PY) manage.py replay demo/demo_capture.jsonl

lint: style types

style: $(STAMP)
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .

types: $(STAMP)
	$(PY) -m mypy .

test: lint
	$(PY) -m pytest

# Regenerate the demo capture (deterministic: same seed, same file).
demo-capture: $(STAMP)
	$(PY) demo/make_demo_capture.py demo/demo_capture.jsonl

bench: $(STAMP)
	$(PY) bench/core.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
