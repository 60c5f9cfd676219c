# Two commands a newcomer needs:  make demo   and   make test
# Both build their own virtual environment in .venv on first use.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
STAMP  := $(VENV)/.installed-test

.PHONY: demo test venv clean bench

$(STAMP): setup.cfg pyproject.toml requirements/test-constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools wheel
	$(PIP) install --quiet -c requirements/test-constraints.txt -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

## make test: the whole test suite (unit and end-to-end)
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## make demo: the main job on any machine, no car, camera or weights needed
demo: $(STAMP)
	$(PY) -m export.demo

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
