# Two commands set up a fresh machine (Python >= 3.11 only):
#   make demo   -> creates .venv, installs Stockwise (run-time dependencies only), runs the demo
#   make test   -> creates .venv, installs Stockwise with test extras, runs the tests (all but those
#                  marked slow); make test-slow the slow real-data ones; CI (.ci/run) runs both
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# the demo must work from the run-time dependencies alone (issue 10: a test-only package
# hid a missing run-time one), so the two installs have separate stamps
RUNTIME := $(VENV)/.installed
TESTDEPS := $(VENV)/.installed-test

.PHONY: demo test test-slow test-all test-fast lint browser clean

$(RUNTIME): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUNTIME)

$(TESTDEPS): $(RUNTIME)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(TESTDEPS)

demo: $(RUNTIME)
	$(BIN)/stockwise demo

# the default run: every test but those marked slow (the end-to-end runs on all of carparts, the
# Dask/Spark recommends), under ~10 min on 2 cores
test: $(TESTDEPS) browser lint
	$(BIN)/python -m pytest -q -m "not slow"

# the tests marked slow only (CI runs `make test` then this)
test-slow: $(TESTDEPS) browser
	$(BIN)/python -m pytest -q -m slow

# every test, the slow ones included
test-all: test test-slow

# ruff: lint (pyflakes, pycodestyle, import order) and the formatter's check, as CI runs them
lint: $(TESTDEPS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# the default run's tests without the lint and browser set-up
test-fast: $(TESTDEPS)
	$(BIN)/python -m pytest -q -m "not slow"

# The planner report is checked in headless Chromium (Debian's package). Installed
# when missing and we may (root with apt-get, as in CI); otherwise those tests skip.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium for the report tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "chromium install failed: browser tests will be skipped"; \
	  else echo "chromium not found: browser tests will be skipped (apt-get install chromium)"; fi; }

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
