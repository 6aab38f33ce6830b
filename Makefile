# The two quick-start commands (see README): `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST := $(BIN)/python -m pytest -q --durations=15

.PHONY: demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.examples: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[examples]'
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.examples

demo: $(VENV)/.examples
	$(BIN)/python examples/quickstart.py

# The CUDA kernels run twice without a GPU: compiled for an H100 by compile_ptx in
# the first run, executed by Numba's simulator in the second (the two cannot share
# a process). On a GPU machine the first run also executes them for real.
test: $(VENV)/.dev
	$(PYTEST)
	NUMBA_ENABLE_CUDASIM=1 NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS=0 $(PYTEST) tests/test_cuda_kernels*.py tests/test_device.py

bench: $(VENV)/.dev
	cd asv_benchmarks && ../$(BIN)/asv machine --yes && \
	  ../$(BIN)/asv run --python=same --set-commit-hash $$(git rev-parse HEAD) --show-stderr

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache asv_benchmarks/results asv_benchmarks/html
