# Two commands a newcomer needs: `make run` (main job) and `make test` (the tests).
# Both install everything into .venv/ first; the install is redone when pyproject changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch by default, so a CPU-only machine never pulls multi-GB CUDA
# wheels. GPU users: make run TORCH_SPEC="torch==2.13.0" TORCH_INDEX="<your CUDA wheel index>"
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
DATASETS ?= ../shared/datasets/adbench

.PHONY: install run test test-slow lint benchmark clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

run: install
	$(BIN)/anomalyflow run

test: install
	$(BIN)/python -m pytest

test-slow: install
	$(BIN)/python -m pytest -m slow

lint: install
	$(BIN)/ruff check src tests flows tools
	$(BIN)/ruff format --check src tests flows tools
	$(BIN)/mypy

benchmark: install
	$(BIN)/anomalyflow benchmark $(DATASETS)/*.npz --label-ratio 0.05 --seeds 3
	$(BIN)/anomalyflow benchmark $(DATASETS)/*.npz --label-ratio 0 --seeds 3 --no-speed

clean:
	rm -rf data artifacts benchmark-results
