# registry-scrub developer entry points. `make help` lists them.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help setup demo test system-deps runners bench mutate lint lock clean

help:
	@echo "make setup        create $(VENV) and install registry-scrub with its test extras"
	@echo "make demo         scan the embedded demo bucket (a local emulator; no cloud account)"
	@echo "make test         install what the tests need (Debian packages, Prism, crane) and run them all"
	@echo "make runners      build Beam's Prism runner once into ~/.cache/registry-scrub (needs Go >= 1.21)"
	@echo "make bench        run the benchmarks under tests/bench/ (prints figures)"
	@echo "make mutate       mutation testing of pipeline/core and the GCS read path (prints the score)"
	@echo "make lock         regenerate requirements.lock (the image's pinned dependencies) from pyproject.toml"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(STAMP)

demo: setup
	$(BIN)/registry-scrub demo

system-deps:
	bash tests/system-deps.sh

# Prints the binary's path; tests/test_runners.py finds it there (or in REGISTRY_SCRUB_PRISM).
runners:
	bash tests/install-prism.sh

test: setup system-deps runners
	bash tests/install-peers.sh >/dev/null
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python tests/bench/bench_scan.py

# Mutation testing ([tool.mutmut] in pyproject.toml): each mutant of pipeline/core and
# pipeline/adapters/gcs.py must make a fast test fail. About 2,600 mutants; minutes on 2 cores.
mutate: setup
	rm -rf mutants
	$(BIN)/mutmut run --max-children $(or $(MUTATE_JOBS),2)
	$(BIN)/python tests/mutation_score.py mutants --target $(or $(MUTATE_TARGET),90)

lint: setup
	$(BIN)/ruff check pipeline jobs tests
	$(BIN)/hadolint Dockerfile
	shellcheck -x jobs/deploy/*.sh

# Every runtime dependency of the Dataflow image, pinned with hashes, for Linux x86_64 and
# Python 3.11 whatever machine runs this. Needs PyPI; commit the result.
lock: setup
	$(BIN)/pip install --quiet 'uv==0.13.9'
	$(BIN)/uv pip compile pyproject.toml jobs/build-requirements.in --extra recovery --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --generate-hashes --custom-compile-command "make lock" \
		--output-file requirements.lock

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache scrub-reports mutants
