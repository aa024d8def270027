# The commands of the README: `make demo` (set up + run the main job), `make test` (set up,
# lint, build the docs, pass the tests) and `make docs`. Everything lives in .venv at the
# repo root.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# DDS discovery never leaves loopback; the tests pick their own ROS_DOMAIN_ID.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST

.PHONY: setup system-deps test test-all lint docs params demo weights bench clean

setup: $(STAMP)

system-deps:
	@if ! ldconfig -p | grep -q libusb-1.0; then \
	  echo "installing Debian package libusb-1.0-0 (needed by open3d)"; \
	  apt-get update && apt-get install -y --no-install-recommends libusb-1.0-0; \
	fi
	@if ! command -v shellcheck >/dev/null; then \
	  echo "installing Debian package shellcheck (lints bench/gpu_check.sh in the tests)"; \
	  apt-get update && apt-get install -y --no-install-recommends shellcheck; \
	fi
	@if ! command -v chromedriver >/dev/null || ! command -v chromium >/dev/null; then \
	  echo "installing Debian packages chromium chromium-driver (the da2k page's browser test)"; \
	  apt-get update && apt-get install -y --no-install-recommends chromium chromium-driver; \
	fi

$(STAMP): requirements/*.txt setup.py training/setup.py | system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -r requirements/test.txt
	$(BIN)/pip install --no-deps --no-build-isolation -e . -e training
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(STAMP) lint docs
	$(BIN)/python -m pytest

# The reference in docs/ (Sphinx + MyST) built into build/docs; warnings (a broken link
# between pages included) are errors, nothing is fetched. Its generated parts come first:
# the benchmark tables from bench/results/*.json and the parameter reference from the
# node's parameter table, both into docs/_generated (not committed).
docs: $(STAMP)
	$(BIN)/python bench/render_docs.py --out docs/_generated/bench
	$(BIN)/python docs/render_parameters.py --out docs/_generated/parameters.md
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs build/docs

# config/depth.yaml from the node's parameter table (dav2_ros/ros/parameters.py): run
# after adding or changing a parameter (test/test_launch.py fails until then).
params: $(STAMP)
	$(BIN)/python -m dav2_ros.ros.params_yaml

test-all: $(STAMP)
	$(BIN)/python -m pytest -m ""

# One run of the node with scale.mode sparse: the summary and the panels show the model's
# own metric depth and the depth fitted to the camera's LiDAR, side by side on the same
# frames. DEMO_CHECKPOINT: the model for it (empty = the bundled default), e.g.
# make demo DEMO_CHECKPOINT=runs/default/export/relative/relative.safetensors
DEMO_CHECKPOINT ?=
demo: $(STAMP)
	$(BIN)/dav2 demo --sparse --duration 60 --rate 15 --out demo_out \
	  $(if $(DEMO_CHECKPOINT),--checkpoint $(DEMO_CHECKPOINT))

# The bundled model (docs/training.md). Extra options, e.g. on a busy machine:
# make weights WEIGHTS_ARGS="--set threads=1"
weights: $(STAMP)
	$(BIN)/dav2-train pipeline --config training/configs/default.yaml $(WEIGHTS_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run_matrix.py

clean:
	rm -rf $(VENV) build install log .pytest_cache .ruff_cache docs/_generated
