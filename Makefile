# motcua: two commands. `make run` starts the whole local stack; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST := $(PY) -m pytest

.PHONY: run test lint-imports test-unit test-integration test-e2e test-faults test-at bench bench-intake bench-lifecycle bench-reporting bench-overload schemas openapi clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt --config-settings editable_mode=compat -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/motcua run

test: $(STAMP)
	$(PYTEST) tests -q

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
bench: bench-intake bench-lifecycle bench-reporting bench-overload

bench-intake: $(STAMP)
	$(PY) -m bench.intake

bench-lifecycle: $(STAMP)
	$(PY) -m bench.lifecycle

bench-reporting: $(STAMP)
	$(PY) -m bench.reporting

# Admission control under 5× the measured capacity, exactly-once after it, and a portal burst (issue 19).
bench-overload: $(STAMP)
	$(PY) -m bench.overload

schemas: $(STAMP)
	$(VENV)/bin/motcua events schema --out docs/events

# Publish each service's OpenAPI document after a deliberate API change (tests/unit/test_published_openapi.py).
openapi: $(STAMP)
	$(VENV)/bin/motcua openapi --out docs/openapi

clean:
	rm -rf $(VENV) .pytest_cache .import_linter_cache
