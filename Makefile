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
# the main run, executed by Numba's simulator in a second run (the two cannot share
# a process; each kernel family's simulator tests are tests/test_cuda_kernels*.py).
# On a GPU machine the main run also executes them for real. Both runs are mostly
# single-threaded Numba compilation from a cold cache, so they run side by side;
# the simulator run's log is printed when it ends.
SIM_LOG := .pytest-simulator.log
test: $(VENV)/.dev
	@NUMBA_ENABLE_CUDASIM=1 NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS=0 $(PYTEST) \
	  tests/test_cuda_kernels*.py tests/test_device.py > $(SIM_LOG) 2>&1 & sim=$$!; \
	$(PYTEST); main=$$?; \
	wait $$sim; simrc=$$?; \
	echo "---- simulator run (NUMBA_ENABLE_CUDASIM=1) ----"; cat $(SIM_LOG); \
	test $$main -eq 0 -a $$simrc -eq 0

bench: $(VENV)/.dev
	cd asv_benchmarks && ../$(BIN)/asv machine --yes && \
	  ../$(BIN)/asv run --python=same --set-commit-hash $$(git rev-parse HEAD) --show-stderr

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache $(SIM_LOG) asv_benchmarks/results asv_benchmarks/html
