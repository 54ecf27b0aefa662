# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONSTRAINTS ?= constraints.txt
PIP_CONSTRAINTS := $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
MOVIELENS_URL ?= https://files.grouplens.org/datasets/movielens/ml-latest-small.zip

.PHONY: install demo test viz download movielens collab lint benchmark

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]" $(PIP_CONSTRAINTS)
	touch $@

## Generate the stand-in dataset, then run the whole chain on it (CPU, minutes).
demo: install
	$(BIN)/kedro run --env=demo --pipelines=demo_data
	$(BIN)/kedro run --env=demo --pipelines=pseudo_label

## The test suite CI runs (CPU, a few minutes).
test: install
	$(BIN)/python -m pytest

## Kedro-Viz on the demo's pipelines at http://127.0.0.1:4141 (the hooks say how many folds it trains).
viz: install
	$(BIN)/kedro viz run --env=demo --include-hooks

## Download and unzip the real competition into data/01_raw (needs Kaggle credentials).
download: install
	$(BIN)/python -m statefarm.data.competition download data/01_raw/state-farm-distracted-driver-detection

## Download MovieLens ml-latest-small from GroupLens into data/01_raw (its README.txt comes with it).
movielens: install
	mkdir -p data/01_raw
	$(BIN)/python -c "import urllib.request; urllib.request.urlretrieve('$(MOVIELENS_URL)', 'data/01_raw/ml-latest-small.zip')"
	$(BIN)/python -m zipfile -e data/01_raw/ml-latest-small.zip data/01_raw
	rm data/01_raw/ml-latest-small.zip

## Collaborative filtering on MovieLens: the model comparison, predictions, recommendations, pictures.
collab: install
	test -f data/01_raw/ml-latest-small/ratings.csv || $(MAKE) movielens
	$(BIN)/kedro run --pipelines=collab

lint: install
	$(BIN)/ruff check src tests benchmarks

benchmark: install
	$(BIN)/python benchmarks/bench_image_cache.py
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_cpu_precision.py
	$(BIN)/python benchmarks/bench_collab.py
	$(BIN)/python benchmarks/bench_neighbours.py
	$(BIN)/python benchmarks/bench_test_prediction.py
