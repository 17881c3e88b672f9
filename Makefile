# Each target sets itself up: a virtualenv in .venv with this package installed (torch pinned to a CPU-friendly
# release unless you choose one: `make test TORCH_SPEC="torch==2.5.1"`, or TORCH_SPEC= to keep the venv's torch).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: demo study test lint install clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC) -e ".[dev]"
	touch $@

install: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/trl-unified demo --output-dir outputs/demo

study: $(BIN)/.installed
	$(BIN)/trl-unified ablate --output_dir outputs/study

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) outputs .pytest_cache
