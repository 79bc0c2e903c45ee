# The two commands of the book: `make book` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Every notebook listed in _toc.yml, so nbval runs exactly the chapters of the book.
NOTEBOOKS = $(shell $(BIN)/python tests/toc_notebooks.py)

.PHONY: help setup book book-strict test test-browser lint lab bench clean

help:
	@echo "make book   execute every chapter and write _build/html/index.html"
	@echo "make test   unit tests, then every chapter under nbval"
	@echo "make lab    open the book in JupyterLab"
	@echo "make test-browser  check every built page in headless Chromium"
	@echo "make bench  print the benchmark figures (simulator, loaders)"

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt -e ".[book,test]"
	touch $(STAMP)

setup: $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . --path-output .
	@echo "Open _build/html/index.html"

# What CI builds: warnings are errors, broken references fail the build.
book-strict: $(STAMP)
	$(BIN)/jupyter-book build . --path-output . -W -n --keep-going

test: $(STAMP)
	$(BIN)/python -m pytest tests $(NOTEBOOKS) --ignore=tests/browser --nbval-lax \
		--nbval-cell-timeout=600 --durations=15

# Every page of the built book in headless Chromium (run `make book` first); screenshots go to
# _build/screenshots/.
test-browser: $(STAMP)
	$(BIN)/python -m pytest tests/browser -v

lint: $(STAMP)
	$(BIN)/ruff check interest_lib tests benchmarks book

lab: $(STAMP)
	$(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt -e ".[lab]"
	$(BIN)/jupyter lab book/

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_simulate.py

clean:
	rm -rf _build .pytest_cache .hypothesis
