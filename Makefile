# Tessera: `make run` serves a development provider; `make test` runs the whole suite.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000
export HOST PORT

.PHONY: run venv dev-venv setup test lint format postman bench clean

$(BIN)/activate: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $(BIN)/activate

venv: $(BIN)/activate

$(VENV)/.dev: $(BIN)/activate requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.dev

dev-venv: $(VENV)/.dev

setup: venv
	$(BIN)/flask db upgrade
	$(BIN)/flask keys generate --if-missing
	$(BIN)/flask demo seed

run: setup
	@echo "Serving on http://$(HOST):$(PORT) (Ctrl-C to stop)"
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

test: dev-venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: dev-venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: dev-venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

postman: dev-venv
	bash postman/run.sh

bench: dev-venv
	bash bench/run.sh

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
