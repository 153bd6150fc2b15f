# registry-scrub developer entry points. `make help` lists them.
# The image's Python (3.11) when the machine has it, else the first other supported one.
PYTHON ?= $(firstword $(foreach v,3.11 3.12 3.13 3.10,$(shell command -v python$(v) 2>/dev/null)) python3.11)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help setup demo test test-pythons system-deps runners bench mutate lint lock pin-images clean

help:
	@echo "make setup        create $(VENV) and install registry-scrub with its test extras"
	@echo "make demo         scan the embedded demo bucket (a local emulator; no cloud account)"
	@echo "make test         install what the tests need (Debian packages, Prism, crane) and run them all"
	@echo "make test-pythons the core tests and the demo's scan on every Python 3.10-3.13 found here, each in its own venv"
	@echo "make runners      build Beam's Prism runner once into ~/.cache/registry-scrub (needs Go >= 1.21)"
	@echo "make bench        run the benchmarks under tests/bench/ (prints figures)"
	@echo "make mutate       mutation testing of pipeline/core and the GCS read path (prints the score)"
	@echo "make lock         regenerate requirements.lock (the image's pinned dependencies) from pyproject.toml"
	@echo "make pin-images   pin the Dockerfile's base images to the digests their tags resolve to now (crane; a release step)"

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

# The whole suite on $(PYTHON), then the core tests and the demo's scans on the oldest and the
# newest Python we support, where this machine has them: all three others would add about
# 5.5 minutes on a fresh 2-core machine, these two 3 min 23 s (docs/runners.md, "Python versions").
test: setup system-deps runners
	bash tests/install-peers.sh >/dev/null
	$(BIN)/python -m pytest
	PYTHONS_MISSING_OK=1 PYTHON_VERSIONS="3.10 3.13" bash tests/test-pythons.sh

# Every Python of 3.10-3.13 found here (pyenv's, or python3.X on PATH), each in .venv-pythons/.
test-pythons:
	bash tests/test-pythons.sh

bench: setup
	$(BIN)/python tests/bench/bench_scan.py

# Mutation testing ([tool.mutmut] in pyproject.toml): each mutant of pipeline/core and
# pipeline/adapters/gcs.py must make a fast test fail. About 9,400 mutants; hours on 2 busy cores
# (docs/reliability.md says how to measure some files only).
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

# Every base image of the Dockerfile pinned to the digest its tag resolves to now, with crane
# (tests/install-peers.sh builds it when it is not on PATH). Needs the registries; a release step
# (docs/production.md, "Pinned base images"). Review and commit the result.
CRANE ?= $(or $(shell command -v crane 2>/dev/null),$(shell bash tests/install-peers.sh 2>/dev/null)/crane)
pin-images: setup
	$(BIN)/python -m jobs.pin_images Dockerfile --crane "$(CRANE)"

clean:
	rm -rf $(VENV) .venv-pythons build *.egg-info .pytest_cache scrub-reports mutants
