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
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,qnn,sim]'
	touch $@

install: $(BIN)/.installed

# Run the humanoid recipe on the zoo's default whole-body controller: INT8 for the QCS6490
# NPU (HTP simulator), QNN context binaries, then the 50 Hz budget on this CPU (measured) and
# on the QCS6490 (estimated). Reports land in out/humanoid/ (report.json, junit.xml,
# summary.md, latency plots). Exit code 1 (a gate missed) is a verdict, not a broken demo.
demo: install
	$(BIN)/edgekit run recipes/humanoid.yaml --out $(OUT)/humanoid || test $$? -eq 1

lint: install
	$(BIN)/ruff check edgekit tests benchmarks calib_data
	$(BIN)/ruff format --check edgekit tests benchmarks calib_data
	$(BIN)/mypy edgekit

test: lint
	$(BIN)/pytest -q

# Speed targets: run by hand on an idle machine; results go in the README.
bench: install
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,qnn,sim,bench]'
	$(BIN)/python benchmarks/ort_vs_torch.py
	$(BIN)/python benchmarks/harness_overhead.py
	$(BIN)/python benchmarks/quantize_compare.py
	$(BIN)/python benchmarks/distill_compare.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache
