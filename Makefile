# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo-world

.PHONY: demo test lint venv clean-demo bench

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "guidang needs Python >= 3.11 (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@# the PRONOM matcher's tables built once here, so a first `guidang check` finds them cached (packager/format_cache.py)
	$(BIN)/python -c 'from packager.format_id import identify_bytes; identify_bytes(b"%PDF-1.4", b"%%EOF")'
	@touch $@

## Build the demo world (when absent) and run one nightly transfer over it.
demo: venv
	$(BIN)/guidang demo $(DEMO_DIR)

## Figures, not a test: the real night over 200 matters x 5 PDFs of 1 MB, beside bagit and the hash limit.
bench: venv
	$(BIN)/guidang bench

## The whole test suite, then the linter. Two pytest workers, each given whole test files (a module's
## fixtures, such as the crash suite's uninterrupted night, are built once): most tests wait on
## subprocesses, servers and sockets, so two of them share the two cores well (docs/benchmark.md has the figures).
## One test alone: `.venv/bin/python -m pytest tests/FILE::TEST` (no worker, no -n).
test: venv
	$(BIN)/python -m pytest -q -n 2 --dist loadfile
	$(BIN)/ruff check .

lint: venv
	$(BIN)/ruff check .

clean-demo:
	rm -rf $(DEMO_DIR)
