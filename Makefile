# Two commands for a newcomer:  make demo   |   make test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# make demo runs as many jobs at once as the machine has cores; CORES=4 make demo (or make demo
# CORES=4) for another number. The tests' workers are a number of their own: each end-to-end test
# runs a workflow of its own, and more than two at once outgrow a 24 GB machine's memory.
CORES ?= $(shell nproc 2>/dev/null || echo 2)
TEST_WORKERS ?= 2

ORACLE := .vbench-oracle

.PHONY: install system-deps demo toy-models test bench lint clean-demo

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# torch/torchvision first, pinned: the versions this project is tested with.
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake all --cores $(CORES) --configfile config/demo.yaml
	@echo "Demo table: results/demo/table.md"

# Retrain the toy world's models from scratch into the folder the demo takes them from (about
# 35 minutes on 2 CPU cores: the sum of the train_minutes in their toy_metrics.json); the files
# shipped there are what this wrote.
toy-models: $(STAMP)
	$(BIN)/python -m t2v_core.toy.train --out t2v_core/toy/models

# Debian's slurm-wlm and munge for the test that runs the demo on a real one-node SLURM
# (installed when missing, as root or through sudo; without either that test skips).
system-deps:
	@if ! command -v sbatch >/dev/null || ! test -x /usr/sbin/slurmctld || ! test -x /usr/sbin/munged; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; \
	  else echo "system-deps: not root and no sudo: the SLURM test will be skipped"; exit 0; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq slurm-wlm munge; \
	fi

# VBench's own code, the oracle of tests/test_vbench_oracle.py: vbench pins numpy<2 and
# transformers 4.33, so it goes into a folder of its own without its dependencies, with the two
# modules its dimensions import (cv2, easydict). Without the registry the oracle test skips.
$(ORACLE)/.installed: $(STAMP)
	$(BIN)/pip install --quiet --no-deps --target $(ORACLE) vbench==0.1.5 opencv-python-headless==5.1.0.95 \
	  easydict==1.14 && touch $@ || echo "vbench not installed: tests/test_vbench_oracle.py will skip"

# Test modules (and the fault matrix's two halves) run side by side, TEST_WORKERS at once: most of the
# suite is end-to-end runs whose jobs start up on one core. In the order tests/conftest.py gives
# them (the end-to-end runs first), not pytest-xdist's (the modules with the most tests first).
test: $(STAMP) system-deps $(ORACLE)/.installed
	$(BIN)/python -m pytest -v -rs --durations=15 --timeout=1500 -n $(TEST_WORKERS) --dist loadscope \
	  --no-loadscope-reorder tests

# The performance suite (a few minutes on a CPU): benchmarks/results/<cpu|cuda>/summary.{json,md}
bench: $(STAMP)
	$(BIN)/python -m benchmarks

lint: $(STAMP)
	$(BIN)/snakemake --lint --configfile config/demo.yaml
	$(BIN)/snakefmt --check Snakefile rules

clean-demo:
	rm -rf results/demo .snakemake
