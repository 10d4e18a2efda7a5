# One command per verb. `make serve` and `make test` work from a clean clone.
PYTHON ?= python3.11
# torch first and pinned: an unpinned resolve can pull a multi-GB build; these match torchvision.
TORCH ?= torch==2.14.1 torchvision==0.29.1
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint bench clean chromium

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[dev,generation,segmentation,otel,weights]'
	# ultralytics pulls the desktop opencv-python into the same cv2 folder as the headless
	# build; reinstalling headless over it leaves one working (headless) OpenCV.
	$(BIN)/pip install --quiet --force-reinstall --no-deps opencv-python-headless
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/easel serve all --host 127.0.0.1 --port 8000

# The browser test drives the system's Chromium: installed here when missing (as root).
chromium:
	.ci/ensure-chromium

test: $(STAMP) chromium
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/gateway_overhead.py

clean:
	rm -rf $(VENV) data run .pytest_cache .mypy_cache .ruff_cache .hypothesis
