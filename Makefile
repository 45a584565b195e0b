# Arbitrage Sniper. `make run` and `make test` work on a fresh machine with Python 3.11.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run demo test lint style types install demo-capture demo-record bench bench-pipeline bench-web bench-depth bench-transport bench-publish bench-lifecycle bench-soak clean

# The virtualenv, with the pinned runtime and test requirements; redone when they change.
$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

# Everything, under one supervisor: Redis (embedded when none answers at REDIS_URL), the exchange
# simulator, the ingestor and the engine, logs prefixed per process. Ctrl-C stops it all.
run: $(STAMP)
	$(PY) -m arbsite.supervisor

# The bundled seven-venue demo capture through the offline replay: signals on stdout, counts on
# stderr. QUOTE_RATES=live make demo shows the USDT depeg it holds as well.
demo: $(STAMP)
	$(PY) manage.py replay demo/seven_venues.jsonl.gz

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

# Re-record the seven-venue demo capture: our simulator through our ingestor, a scripted market,
# about 75 s; similar, not byte-identical, from run to run (demo/README.md).
demo-record: $(STAMP)
	$(PY) demo/record_seven_venues.py demo/seven_venues.jsonl.gz

bench: $(STAMP)
	$(PY) bench/core.py

bench-pipeline: $(STAMP)
	$(PY) bench/pipeline.py

bench-web: $(STAMP)
	$(PY) bench/web_latency.py

bench-depth: $(STAMP)
	$(PY) bench/depth.py

bench-transport: $(STAMP)
	$(PY) bench/transport.py

bench-publish: $(STAMP)
	$(PY) bench/publish.py

bench-lifecycle: $(STAMP)
	$(PY) bench/lifecycle.py

# The whole system for 30 minutes (SOAK_MINUTES), sampled every minute: RSS, latency, drops, drift.
SOAK_MINUTES ?= 30
bench-soak: $(STAMP)
	$(PY) bench/soak.py --minutes $(SOAK_MINUTES)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
