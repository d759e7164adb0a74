# Set-up contract: `make test` and `make docs` work on a fresh clone with nothing installed.
# torch is installed first from the pinned CPU build (override: `make test TORCH=torch`).
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: test lint typecheck pytest docs demo bench bench-quick clean

$(VENV)/.dev-installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) "$(TORCH)"
	$(PIP) -e ".[dev]"
	touch $@

$(VENV)/.docs-installed: $(VENV)/.dev-installed pyproject.toml
	$(PIP) -e ".[docs]"
	touch $@

# The benchmarks compare with torchcfm, flow_matching, torchebm, torchdiffeq and zuko from the
# registry. torchcfm and torchebm are installed with --no-deps: torchcfm's requirements pull
# torchdyn -> torchvision -> a CUDA torch; torchebm needs only torch.
$(VENV)/.bench-installed: $(VENV)/.dev-installed
	$(PIP) -e ".[bench]"
	$(PIP) --no-deps torchcfm torchebm
	touch $@

BENCH_SUITES := coupling coupling_survey coupling_quantised coupling_heavy training_step sampling_quality likelihood density overhead adaptive few_step

test: $(VENV)/.dev-installed lint typecheck pytest

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests

typecheck: $(VENV)/.dev-installed
	$(VENV)/bin/mypy

pytest: $(VENV)/.dev-installed
	$(PY) -m pytest $(PYTEST_ARGS)

demo: $(VENV)/.dev-installed
	$(VENV)/bin/interpolants demo --out demo

bench: $(VENV)/.bench-installed
	set -e; for suite in $(BENCH_SUITES); do $(PY) benchmarks/$$suite.py; done

bench-quick: $(VENV)/.bench-installed
	set -e; for suite in $(BENCH_SUITES); do $(PY) benchmarks/$$suite.py --quick; done

# The HTML site, running the gallery (examples/, one torch thread; an example unchanged since
# its last run is not rerun), then the pages' doctests on the same parsed sources, then the
# built site's check: every internal link resolves, and headless Chromium renders the landing
# page and a gallery page (skipped with a message where Debian's chromium is not installed).
# Every page is re-read (-E), so that a warning of an unchanged page still fails the build.
docs: $(VENV)/.docs-installed
	OMP_NUM_THREADS=1 $(VENV)/bin/sphinx-build -E -W --keep-going -b html -d docs/_build/doctrees docs docs/_build/html
	OMP_NUM_THREADS=1 $(VENV)/bin/sphinx-build -W --keep-going -b doctest -d docs/_build/doctrees docs docs/_build/doctest
	$(PY) docs/check_site.py docs/_build/html --screenshots docs/_build/screenshots

clean:
	rm -rf $(VENV) docs/_build docs/auto_examples docs/sg_execution_times.rst .pytest_cache .mypy_cache .ruff_cache .hypothesis
