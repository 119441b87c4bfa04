# The two commands: `make run` (demo on http://127.0.0.1:$PORT) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint bench bench-api bench-simulator bench-list bench-history bench-bulk bench-scaleout clean

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	bash bin/run

test: $(VENV)/.installed-dev
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

bench: $(VENV)/.installed-dev
	bash bench/run
	$(PY) bench/bulk.py

# Partner API lists at scale (docs/benchmarks.md): its own database, seeded once and reused.
bench-api: $(VENV)/.installed-dev
	$(PY) bench/api_queries.py

# Simulator throughput (docs/benchmarks.md): remote POSTs per second against GET /healthz, its own database.
bench-simulator: $(VENV)/.installed-dev
	$(PY) bench/simulator.py

# Admin history lists at 1,000,000 rows (docs/benchmarks.md): queries and time per page, its own database.
bench-history: $(VENV)/.installed-dev
	$(PY) bench/history.py

# The portal's vehicle list at 50,000 vehicles (docs/benchmarks.md): first, deep and last pages, its own database.
bench-list: $(VENV)/.installed-dev
	$(PY) bench/vehicle_list.py --write

# Bulk dispatch against a raw client at 300 ms and 0 of simulated latency (docs/benchmarks.md), its own database.
bench-bulk: $(VENV)/.installed-dev
	$(PY) bench/bulk.py

# Two web processes and two q2 clusters on Redis against one of each (docs/benchmarks.md, docs/operations.md).
bench-scaleout: $(VENV)/.installed-dev
	$(PY) bench/scaleout.py

	rm -rf $(VENV) db.sqlite3* .test-db*.sqlite3* staticfiles
