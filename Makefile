# The two commands of the book: `make book` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Every notebook listed in _toc.yml, so nbval runs exactly the chapters of the book.
NOTEBOOKS = $(shell $(BIN)/python tests/toc_notebooks.py)
# PyTorch's OpenMP threads spin while they wait; on a busy or small machine that steals the CPU
# from the work itself (an LSTM epoch ran 10x slower). Passive waiting costs nothing when idle.
export OMP_WAIT_POLICY ?= PASSIVE
# `make test-latest`: a second environment with the newest release of every dependency instead of
# the pins, torch included (its newest PyPI release brings several GB of CUDA libraries; on a
# CPU-only machine it runs on the CPU all the same). LATEST_TORCH=torch==2.13.0 takes the CPU build.
VENV_LATEST ?= .venv-latest
LATEST_TORCH ?= torch

.PHONY: help setup book book-strict student test test-solutions test-built test-latest lint lab bench clean

help:
	@echo "make book   execute every chapter and write _build/html/index.html"
	@echo "make test   unit tests, then every chapter under nbval"
	@echo "make test-solutions  every chapter again, then each exercise solution's code after it"
	@echo "make lab    open the book in JupyterLab"
	@echo "make test-latest  the tests against the newest releases of every dependency"
	@echo "make student  the student edition: book and notebooks without solutions"
	@echo "make test-built  check the built pages in headless Chromium, and the student edition"
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

# The student edition: the book without solutions (_build_student/_build/html) and solution-free
# notebooks (_build_student/notebooks). Reuses the executed chapters of `make book`.
student: $(STAMP)
	$(BIN)/python -m interest_lib.recipes.classroom config _config.yml _build_student/_config.yml _build/.jupyter_cache
	$(BIN)/jupyter-book build . --config _build_student/_config.yml --path-output _build_student -W -n --keep-going
	$(BIN)/python -m interest_lib.recipes.classroom notebooks _build_student/notebooks $(NOTEBOOKS)
	@echo "Student book: _build_student/_build/html/index.html; notebooks: _build_student/notebooks/"

test: $(STAMP)
	$(BIN)/python -m pytest tests $(NOTEBOOKS) --ignore=tests/built --nbval-lax -m "not solutions" \
		--nbval-cell-timeout=600 --durations=15

# Every chapter executed again, then the code of each of its exercise solutions in the same
# kernel (tests/test_solutions.py): a few minutes, so `make test` leaves it out.
test-solutions: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest tests/test_solutions.py -m solutions \
		-p no:cacheprovider -v

# Unit tests and every chapter against the newest releases of the dependencies (what Colab and
# new users get), without constraints.txt. The chapters' accuracy claims (tests/test_chapter*_claims)
# are checked in the pinned environment only: their numbers belong to the pinned versions.
test-latest:
	test -x $(VENV_LATEST)/bin/python || $(PYTHON) -m venv $(VENV_LATEST)
	$(VENV_LATEST)/bin/python -m pip install --disable-pip-version-check -q --upgrade \
		--upgrade-strategy eager "$(LATEST_TORCH)" -e ".[book,test]"
	$(VENV_LATEST)/bin/python -m pip list --disable-pip-version-check 2>/dev/null | \
		grep -iE "^(torch|numpy|pandas|scipy|scikit-learn|matplotlib|pyarrow|jupyter-book|myst-nb) "
	$(VENV_LATEST)/bin/python -m pytest tests $(NOTEBOOKS) --ignore=tests/built --nbval-lax \
		--ignore-glob="tests/test_chapter*_claims.py" -m "not solutions" --nbval-cell-timeout=600 -p no:cacheprovider

# Tests of the built book (run `make book` and `make student` first): every page in headless
# Chromium, screenshots in _build/screenshots/; no solution text in the student edition.
test-built: $(STAMP)
	$(BIN)/python -m pytest tests/built -v

lint: $(STAMP)
	$(BIN)/ruff check interest_lib tests benchmarks book

lab: $(STAMP)
	$(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt -e ".[lab]"
	$(BIN)/jupyter lab book/

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_simulate.py

clean:
	rm -rf _build .pytest_cache .hypothesis
