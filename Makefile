# motcua: two commands. `make run` starts the whole local stack; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST := $(PY) -m pytest

.PHONY: run test test-slow lint-imports test-unit test-integration test-e2e test-faults test-at bench bench-intake bench-lifecycle bench-reporting bench-overload bench-import bench-backfile schemas openapi clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt --config-settings editable_mode=compat -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/motcua run

# Every test but the slow suites (under 15 minutes on 2 cores); CI runs `make test` and then `make test-slow`.
test: $(STAMP)
	$(PYTEST) tests -q -m "not slow"

# The suites that take minutes each (tests marked slow: the fault suites under load, the 50,000-line register,
# the 200-scan batch, the alert rules in a real Prometheus, drift after a broker lost records). They guard
# correctness: CI runs them too.
test-slow: $(STAMP)
	$(PYTEST) tests -q -m slow

# The architecture's import contracts ([tool.importlinter] in pyproject.toml); `make test` runs them too.
lint-imports: $(STAMP)
	$(VENV)/bin/lint-imports

test-unit: $(STAMP)
	$(PYTEST) tests/unit -q

test-integration: $(STAMP)
	$(PYTEST) tests/integration -q

test-e2e: $(STAMP)
	$(PYTEST) tests/e2e -q

test-faults: $(STAMP)
	$(PYTEST) tests/faults -q

# The suite with every process's clock moved to a time in Vietnam (libfaketime), e.g. AT="2026-11-27 23:56".
AT ?= $(shell TZ=Asia/Ho_Chi_Minh date -d tomorrow '+%Y-%m-%d 16:56')
test-at: $(STAMP)
	scripts/test-at "$(AT)"

# Every benchmark, one after the other (each starts and stops its own stack); figures in bench/results/.
bench: bench-intake bench-lifecycle bench-reporting bench-overload bench-import bench-backfile

bench-intake: $(STAMP)
	$(PY) -m bench.intake

bench-lifecycle: $(STAMP)
	$(PY) -m bench.lifecycle

bench-reporting: $(STAMP)
	$(PY) -m bench.reporting

# Admission control under 5× the measured capacity, exactly-once after it, and a portal burst (issue 19).
bench-overload: $(STAMP)
	$(PY) -m bench.overload

# Issue #22: a generated 50,000-line paper register through intake's import (lines/s, peak memory, projection time).
bench-import: $(STAMP)
	$(PY) -m bench.register_import

# Issue #22: a batch of scanned results sealed and filed (files/s, peak memory).
bench-backfile: $(STAMP)
	$(PY) -m bench.backfile

schemas: $(STAMP)
	$(VENV)/bin/motcua events schema --out docs/events

# Publish each service's OpenAPI document after a deliberate API change (tests/unit/test_published_openapi.py).
openapi: $(STAMP)
	$(VENV)/bin/motcua openapi --out docs/openapi

clean:
	rm -rf $(VENV) .pytest_cache .import_linter_cache
