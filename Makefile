# leadflow — the two commands: `make demo` and `make test` (both set themselves up).
SHELL := /bin/bash
PYTHON ?= $(shell for p in python3 python3.12 python3.11 python3.13; do \
	  $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAM_VENV := .venv-sam
# sam build needs an interpreter matching the runtime (python3.12): on PATH, or through pyenv.
PY312 ?= $(shell for p in $$HOME/.pyenv/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12 python3.12; do \
	  $$p -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1 && { command -v $$p; break; }; done)

.PHONY: demo test lint typecheck sam-validate sam-build ci bench up clean yandex-package

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is needed"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

# `make demo CRM=sheets`: the same story with a Google sheet (on a local stand-in) as the CRM.
demo: $(STAMP)
	$(BIN)/leadflow demo $(if $(CRM),--crm $(CRM))

up: $(STAMP)
	$(BIN)/leadflow up

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

$(SAM_VENV)/.installed:
	@test -n "$(PY312)" || { echo "sam build needs python3.12 (install it, e.g. pyenv install 3.12)"; exit 1; }
	$(PY312) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli
	@touch $@

sam-validate: $(SAM_VENV)/.installed
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam validate --lint --region eu-central-1

sam-build: $(SAM_VENV)/.installed
	SAM_CLI_TELEMETRY=0 PATH="$$(dirname $(PY312)):$$PATH" $(SAM_VENV)/bin/sam build --region eu-central-1

ci: test lint typecheck sam-validate sam-build

# One zip per function for Yandex Cloud Functions (deploy/yandex; README "Deploying to Yandex Cloud").
yandex-package: $(STAMP)
	$(BIN)/python deploy/yandex/package.py --out build/yandex

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .leadflow
