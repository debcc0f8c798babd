# The README's commands. `make demo` and `make test` set the machine up first if needed.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test lint typecheck check clean

$(VENV)/.prg-installed: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh

setup: $(VENV)/.prg-installed

demo: $(VENV)/.prg-installed
	$(VENV)/bin/prg demo --out outputs/demo

test: $(VENV)/.prg-installed
	bash scripts/test.sh

lint: $(VENV)/.prg-installed
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.prg-installed
	$(VENV)/bin/mypy

check: lint typecheck test

clean:
	rm -rf outputs .pytest_cache .mypy_cache .ruff_cache
