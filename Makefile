# edgekit: `make demo` runs the main job on the built-in default, `make test` runs the checks.
# Both create the virtualenv and install everything on a fresh machine.
VENV   ?= .venv
PYTHON ?= python3
BIN     = $(VENV)/bin
OUT    ?= out

.PHONY: install demo test lint bench clean

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: the CPU wheel, never an unpinned resolve that pulls CUDA.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,qnn]'
	touch $@

install: $(BIN)/.installed

# Export the zoo's diffusion policy (encoder + UNet denoiser, DDIM-16 loop) with a parity
# check, then bench its whole tick on this CPU at 10 Hz. Exit code 1 (budget missed) is a
# verdict, not a broken demo, so it does not fail `make demo`.
demo: install
	$(BIN)/edgekit export zoo:diffusion-policy --out $(OUT)/diffusion-policy --force
	$(BIN)/edgekit bench $(OUT)/diffusion-policy --target cpu --ticks 50 \
		--json $(OUT)/diffusion-policy.bench.json || test $$? -eq 1

lint: install
	$(BIN)/ruff check edgekit tests benchmarks calib_data
	$(BIN)/ruff format --check edgekit tests benchmarks calib_data
	$(BIN)/mypy edgekit

test: lint
	$(BIN)/pytest -q

# Speed targets: run by hand on an idle machine; results go in the README.
bench: install
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,qnn,bench]'
	$(BIN)/python benchmarks/ort_vs_torch.py
	$(BIN)/python benchmarks/harness_overhead.py
	$(BIN)/python benchmarks/quantize_compare.py
	$(BIN)/python benchmarks/distill_compare.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache
