# The two commands README starts with:
#   make run    the whole payment flow locally (Stripe stand-in unless STRIPE_SECRET_KEY is set)
#   make test   every test, with Google's Firestore emulator and a real browser where present
# Both set themselves up: a virtual environment in .venv.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test bench setup clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: setup
	$(PY) -m devtools.run_local $(ARGS)

test: setup
	$(PY) -m pytest $(ARGS)

bench: setup
	$(PY) -m bench $(ARGS)

clean:
	rm -rf $(VENV) .local .pytest_cache
