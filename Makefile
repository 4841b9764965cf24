# The two commands README starts with:
#   make run    the whole payment flow locally (Stripe stand-in unless STRIPE_SECRET_KEY is set)
#   make test   every test, with Google's Firestore emulator and a real browser where present
# Both set themselves up: a virtual environment in .venv. make test runs make lint first.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint lock bench mutate setup clean

setup: $(VENV)/.installed

# requirements-dev.txt pins every package with its hashes: pip checks each download against them.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.txt
	touch $@

run: setup
	$(PY) -m devtools.run_local $(ARGS)

test: lint
	$(PY) -m pytest $(ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# After editing requirements.in or requirements-dev.in: resolve them, for every platform and
# Python from 3.11 on, into the pinned and hashed files pip and Cloud Run install from.
LOCK := $(VENV)/bin/uv pip compile --quiet --universal --generate-hashes --python-version 3.11 \
	--annotation-style line --custom-compile-command "make lock"
lock: setup
	$(LOCK) requirements.in -o requirements.txt
	$(LOCK) requirements-dev.in -c requirements.txt -o requirements-dev.txt

bench: setup
	$(PY) -m bench $(ARGS)

# Mutation testing (devtools/mutate.py): minutes, so not part of make test.
mutate: setup
	$(PY) -m devtools.mutate $(ARGS)

clean:
	rm -rf $(VENV) .local .pytest_cache
