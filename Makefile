# The two commands a newcomer needs: `make demo` (install and run) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo install test typecheck lint format

# `make test` on a fresh clone installs first; afterwards it runs straight away.
$(BIN)/pytest: | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'

# Embedded defaults: SQLite under var/, a real Celery worker on kombu's filesystem transport.
demo: install
	PUBLIC_BASE_URL=http://$(HOST):$(PORT) $(BIN)/python manage.py quickstart
	PUBLIC_BASE_URL=http://$(HOST):$(PORT) $(BIN)/python manage.py demo_dialogues
	$(BIN)/celery -A evalplatform worker --pool solo --queues default,api --loglevel WARNING & \
	worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	PUBLIC_BASE_URL=http://$(HOST):$(PORT) $(BIN)/python manage.py runserver $(HOST):$(PORT)

test: $(BIN)/pytest
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest

format:
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(BIN)/pytest
	$(BIN)/mypy
