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

# Two test processes where there are two cores (at most four), one file each at a time so a
# module's fixtures are built once; one torch thread each, or they slow each other 10-100x.
test: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest --numprocesses auto --maxprocesses 4 --dist loadfile

test-slow: install
	$(BIN)/python -m pytest -m slow

lint: install
	$(BIN)/ruff check src tests flows tools
	$(BIN)/ruff format --check src tests flows tools
	$(BIN)/mypy

# Every label budget of docs/benchmarks.md with every peer (XGBOD, DevNet and PReNet are
# installed here), then the label-efficiency plot. Hours on 2 cores: JOBS=N spreads data sets
# and seeds over N processes, and a killed `make benchmark` goes on where it stopped
# (--resume keeps each budget's finished units when the code, data and settings are the same).
JOBS ?= 1
BUDGETS := --label-ratio=0.01 --label-ratio=0.5 --labels=5 --labels=10 --labels=25
benchmark: install
	$(BIN)/python -m pip install --quiet -e ".[peers]"
	$(BIN)/python -m pip install --quiet --no-deps deepod==0.4.1
	$(BIN)/anomalyflow benchmark $(DATASETS)/*.npz --label-ratio 0.05 --seeds 3 --jobs $(JOBS) --resume
	for budget in $(BUDGETS) --label-ratio=0; do \
		$(BIN)/anomalyflow benchmark $(DATASETS)/*.npz $$budget --seeds 3 --no-speed --jobs $(JOBS) --resume || exit 1; \
	done
	$(BIN)/anomalyflow benchmark-efficiency benchmark-results/benchmark-ratio-0.json \
		benchmark-results/benchmark-labels-5.json benchmark-results/benchmark-labels-10.json \
		benchmark-results/benchmark-labels-25.json --out benchmark-results/label-efficiency.png

clean:
	rm -rf data artifacts benchmark-results
