# Stylesite. `make run` starts everything; `make test` runs the whole suite. `make help` lists the rest.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
SHARED ?= ../shared
export U2NET_HOME ?= $(CURDIR)/var/u2net
U2NET_FILE := $(U2NET_HOME)/models/isnet-general-use/isnet-general-use.onnx

.PHONY: help run test services stop migrate demo bench lint

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

$(U2NET_FILE):
	@mkdir -p $(dir $@)
	@if [ -f $(SHARED)/models/isnet-general-use.onnx ]; then ln -sf $(abspath $(SHARED))/models/isnet-general-use.onnx $@; \
	else echo "warning: $(SHARED)/models/isnet-general-use.onnx not found; background removal will report it missing"; fi

services: $(VENV)/.installed  ## Start the embedded Postgres (pgvector) and Redis-compatible broker
	@$(PY) -m stylesite.devservices up

stop:  ## Stop the embedded services
	@$(PY) -m stylesite.devservices down

migrate: services
	$(PY) manage.py migrate --noinput

demo: migrate $(U2NET_FILE)  ## Demo admin, demo garments and simulated visitors
	$(PY) manage.py seed_demo --shared $(SHARED)
	$(PY) manage.py simulate_visitors --collection clothing

run: demo  ## Start services, migrate, load demo data, then web (gunicorn) + worker + beat (Ctrl-C stops all)
	@printf "\n  Stylesite: http://127.0.0.1:8000/   admin: http://127.0.0.1:8000/admin/   API docs: http://127.0.0.1:8000/api/docs/\n\n"
	$(VENV)/bin/honcho start -f Procfile

test: services $(U2NET_FILE)  ## Import contracts (.importlinter), then the whole suite on real Postgres+pgvector and Redis
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest $(PYTEST_ARGS)

bench: services $(U2NET_FILE)  ## Print the benchmark tables (bench/*.py)
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

.PHONY: fuzz
fuzz: services  ## Schemathesis over /api/schema/ with and without a token, more examples (STYLESITE_FUZZ_EXAMPLES, default 60)
	STYLESITE_FUZZ_EXAMPLES=$${STYLESITE_FUZZ_EXAMPLES:-60} $(PY) -m pytest tests/test_schemathesis.py -q
