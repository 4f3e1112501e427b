# edgekit: `make demo` runs the main job on the built-in default, `make test` runs the checks.
# Both create the virtualenv and install everything on a fresh machine.
VENV   ?= .venv
ROBOT  ?= .venv-robot
PYTHON ?= python3
BIN     = $(VENV)/bin
OUT    ?= out

.PHONY: install robot demo test lint qemu bench clean schemas

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: the CPU wheel, never an unpinned resolve that pulls CUDA.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[compress,plots,dev,qnn,sim,user-models,openvino]'
	# the tensorrt extra's CUDA bindings (its GPU detection is tested); tensorrt cannot install
	$(BIN)/pip install -q -c constraints.txt cuda-bindings
	touch $@

install: $(BIN)/.installed

# The robot side as a robot installs it: the base package (+ the simulator eval needs, and
# OpenVINO for x86/ARM CPUs), no torch.
# tests/test_robot_venv.py runs bench, eval and edgekit.Policy in it on artifacts the full
# environment exported.
$(ROBOT)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(ROBOT)
	$(ROBOT)/bin/pip install -q --upgrade pip
	$(ROBOT)/bin/pip install -q -c constraints.txt -e '.[sim,openvino]'
	@! $(ROBOT)/bin/python -c "import torch" 2>/dev/null || { echo "torch in $(ROBOT)"; exit 1; }
	touch $@

robot: $(ROBOT)/.installed

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
	PYTHONPATH=. $(BIN)/lint-imports
	$(BIN)/python -m edgekit.reports.schemas --check

# Regenerate the report family's JSON Schemas (edgekit/reports/schemas/*.schema.json) from
# the pydantic models in edgekit/reports/models.py; tests/test_report_schema.py checks they match.
schemas: install
	$(BIN)/python -m edgekit.reports.schemas

# qemu-user lets tests/test_isa.py run the INT8 kernels of an AVX2-only x86 CPU on any x86 host
# (apt-get, as root; elsewhere that check runs only on an AVX2 host and says so).
qemu:
	@command -v qemu-x86_64 >/dev/null || [ "$$(uname -m)" != x86_64 ] \
	  || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	       && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user >/dev/null; } \
	  || echo "note: qemu-user not installed: the AVX2 INT8 kernel check will be skipped"

test: lint qemu robot
	EDGEKIT_ROBOT_PYTHON=$(ROBOT)/bin/python $(BIN)/pytest -q --durations=15

# Speed targets: run by hand on an idle machine; results go in docs/benchmarks.md (headlines in the README).
bench: install
	$(BIN)/pip install -q -c constraints.txt -e '.[compress,plots,dev,qnn,sim,user-models,bench]'
	$(BIN)/python benchmarks/ort_vs_torch.py
	$(BIN)/python benchmarks/harness_overhead.py
	$(BIN)/python benchmarks/quantize_compare.py
	$(BIN)/python benchmarks/distill_compare.py
	$(BIN)/python benchmarks/token_vla.py
	$(BIN)/python benchmarks/vla_flow_kv.py
	$(BIN)/python benchmarks/vla_quant.py

clean:
	rm -rf $(VENV) $(ROBOT) $(OUT) .pytest_cache .mypy_cache .ruff_cache
