# Every target installs what it needs: uv if missing, then the locked environment.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := python3 -m uv
endif
PY_SOURCES := jobs transforms tests bench examples
# ruff reads the notebooks too (mypy reads no .ipynb)
LINT_SOURCES := $(PY_SOURCES) notebooks
# make bench: the suite (every target; the archives are generated once, ~20 min, then ~10 min a run); BENCH_MB="20" benches those archives only.
BENCH_MB ?=
BENCH_RUNS ?= 3
BENCH_ARGS ?=

.PHONY: help setup demo test lint typecheck pytest bench bench-ray clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

setup:  ## install uv if missing, then the locked environment (.venv)
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --locked --quiet --compile-bytecode --extra ray --extra cloud
	@# the project's own modules too (an editable install's sources are not in site-packages):
	@# where PYTHONDONTWRITEBYTECODE is set, every run would compile them again (~50 ms)
	$(UV) run --locked python -m compileall -q jobs transforms bench > /dev/null

demo: setup  ## run `compound pairs` on the bundled example archive, print the summary, export it for trainers
	$(UV) run compound pairs examples/archive --out out
	$(UV) run compound export out --to messages --dest out/export --overwrite

test: lint typecheck pytest  ## ruff, mypy and pytest

lint: setup
	$(UV) run ruff format --check $(LINT_SOURCES)
	$(UV) run ruff check $(LINT_SOURCES)

typecheck: setup
	$(UV) run mypy $(PY_SOURCES)

pytest: setup
	$(UV) run pytest -q

bench: setup  ## the suite: 1 GB vs the reference and the parse floor, bad lines, gzip, RSS at 2/4 GB, many files, a JSON array, a state.db, targets table (BENCH_RUNS=3); BENCH_MB="20": that archive only
	$(UV) run python bench/run_bench.py $(if $(strip $(BENCH_MB)),--mb $(BENCH_MB)) --runs $(BENCH_RUNS) $(BENCH_ARGS)

bench-ray: setup  ## the 1 GB archive through a local 2-CPU Ray node beside the local engine (<= 1.5x), then two 1-CPU nodes (BENCH_RUNS=3)
	$(UV) run python bench/ray_bench.py --runs $(BENCH_RUNS) $(if $(strip $(BENCH_MB)),--mb $(BENCH_MB))

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache
