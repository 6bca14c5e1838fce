# celltrial: the two commands that do all the set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test install clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## demo: the five studies with virtual cohorts, analysed and reported (SQLite under ./celltrial-data/)
demo: $(STAMP)
	$(VENV)/bin/celltrial demo

## test: the whole test suite; exit code 5 (no tests collected) fails
test: $(STAMP)
	$(PY) -m pytest -n 2 -q

clean:
	rm -rf $(VENV) celltrial-data build *.egg-info
