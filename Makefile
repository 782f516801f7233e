# Two commands for a newcomer:  make demo   |   make test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2

.PHONY: install demo test lint clean-demo

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

test: $(STAMP)
	$(BIN)/python -m pytest -v -rs --timeout=1500 tests

lint: $(STAMP)
	$(BIN)/snakemake --lint --configfile config/demo.yaml
	$(BIN)/snakefmt --check Snakefile rules

clean-demo:
	rm -rf results/demo .snakemake
