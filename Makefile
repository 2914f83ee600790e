# One-file entry point. `make pipeline` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install pipeline test test-fast bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch pinned to the CPU wheel: an unpinned torch pulls gigabytes of CUDA packages
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev,extract]'
	# scenedetect pulls opencv-python, which shares the cv2 folder: the contrib build (saliency, the
	# face cascade) must be the one installed last
	$(BIN)/python -m pip install -q --force-reinstall --no-deps 'opencv-contrib-python-headless>=4.8,<5'
	touch $@

install: $(BIN)/.installed  ## create .venv and install the package, its dev and extract extras and torch==2.13.0

pipeline: install  ## run the whole DVC pipeline on the default (synthetic) corpus
	dvc repro

test: install  ## the full test suite, end-to-end tests included (what CI runs)
	$(BIN)/pytest -q

test-fast: install  ## the suite without the slow end-to-end tests
	$(BIN)/pytest -q -m "not slow"

bench: install  ## every benchmark; writes bench/results.md
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
