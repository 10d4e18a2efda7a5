# One command per verb. `make serve` and `make test` work from a clean clone.
# The newest Python 3.11+ on the PATH (or: make serve PYTHON=/path/to/python3.12).
# Each one is run, not only looked up: a version manager's shim may be on the PATH for a
# version it does not have selected.
PYTHON ?= $(firstword $(foreach v,3.14 3.13 3.12 3.11,$(shell python$(v) -c 'import sys; print(sys.executable)' 2>/dev/null)))
# torch first and pinned: an unpinned resolve can pull a multi-GB build; these match torchvision.
TORCH ?= torch==2.14.1 torchvision==0.29.1
# Where torch comes from; on a machine without an NVIDIA GPU,
# TORCH_INDEX=https://download.pytorch.org/whl/cpu skips about 4 GB of CUDA libraries.
TORCH_INDEX ?=
VENV := .venv
BIN := $(VENV)/bin
# `serve` installs what the server runs; `test` adds the test tools and the optional extras.
SERVE_STAMP := $(VENV)/.installed-serve
TEST_STAMP := $(VENV)/.installed-test
SERVE_EXTRAS := generation,segmentation,weights
# pip shows its progress (a first install downloads torch: minutes), not every line.
PIP := $(BIN)/pip install --progress-bar on --no-warn-script-location

.PHONY: serve test lint bench clean test-tools

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "easel needs Python 3.11 or newer, and none was found:" \
	    "install python3.11 (Debian/Ubuntu: apt-get install python3.11 python3.11-venv)," \
	    "or pass PYTHON=/path/to/python3.x" >&2; exit 1; }
	@echo "==> creating $(VENV) with $$($(PYTHON) --version) ($(PYTHON))"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(SERVE_STAMP): pyproject.toml | $(BIN)/python
	@echo "==> [1/3] torch and torchvision: the largest download, minutes on a first install"
	$(PIP) $(TORCH) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	@echo "==> [2/3] easel and what serving needs: diffusers, transformers, ultralytics"
	$(PIP) -e '.[$(SERVE_EXTRAS)]'
	@echo "==> [3/3] one headless OpenCV"
	# ultralytics pulls the desktop opencv-python into the same cv2 folder as the headless
	# build; reinstalling headless over it leaves one working (headless) OpenCV.
	$(BIN)/pip install --quiet --force-reinstall --no-deps opencv-python-headless
	touch $@

$(TEST_STAMP): $(SERVE_STAMP)
	@echo "==> the test tools (pytest, ruff, mypy, Playwright, modal) and OpenTelemetry"
	$(PIP) -e '.[$(SERVE_EXTRAS),dev,otel]'
	$(BIN)/pip install --quiet --force-reinstall --no-deps opencv-python-headless
	touch $@

serve: $(SERVE_STAMP)
	@echo "==> easel on http://127.0.0.1:8000/ (the playground; API docs at /docs)"
	$(BIN)/easel serve all --host 127.0.0.1 --port 8000

# The browser tests drive the system's Chromium, the README's examples use curl and jq:
# installed here when missing (as root).
test-tools:
	.ci/ensure-test-tools

test: $(TEST_STAMP) test-tools
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(TEST_STAMP)
	$(BIN)/python benchmarks/gateway_overhead.py

clean:
	rm -rf $(VENV) data run .pytest_cache .mypy_cache .ruff_cache .hypothesis
