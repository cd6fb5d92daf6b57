# aliasgate — two commands on a fresh machine: `make demo` and `make test`.
# Both create .venv if missing and install what they need. llama-cpp-python builds from source
# the first time (~6–8 min on 2 cores) with one fixed set of CPU kernels (LLAMA_BUILD, see
# scripts/install-llama.sh and docs/reproducibility.md); the wheel is kept in
# ~/.cache/aliasgate/wheels and reused afterwards.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.aliasgate-installed
PYTEST_ARGS ?=

export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

LLAMA_CPP_VERSION := 0.3.36
# auto = portable (x86-64-v3: AVX2/FMA/F16C/BMI2 kernels, the same answers on every such CPU)
# where the CPU has them, else baseline; or portable | baseline | native
LLAMA_BUILD ?= auto
LLAMA_STAMP := $(VENV)/.llama-$(LLAMA_CPP_VERSION)-$(LLAMA_BUILD)

.PHONY: demo test reliability install lint bench clean help

help:
	@echo "make demo    create .venv, install, run eval -> report on the embedded model"
	@echo "make test    create .venv, install, run the test suite (tests/)"
	@echo "make reliability  the hostile probes of tests/reliability/ (fuzzing, kill -9, races, secrets)"
	@echo "make lint    ruff"
	@echo "make bench   run the benchmark scripts in bench/"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

EXTRAS ?= local,dev,judges,embeddings

$(LLAMA_STAMP): scripts/install-llama.sh | $(BIN)/python
	@rm -f $(VENV)/.llama-*
	scripts/install-llama.sh $(BIN)/python $(LLAMA_CPP_VERSION) $(LLAMA_BUILD)
	@touch $@

$(STAMP): pyproject.toml $(LLAMA_STAMP) | $(BIN)/python
	$(BIN)/python -m pip install -qq -e '.[$(EXTRAS)]'
	@touch $@

install: $(STAMP)

demo: install
	$(BIN)/aliasgate demo

# pytest exits 5 when it collected no test: say so loudly rather than fail obscurely.
test: install
	@$(BIN)/python -m pytest tests/ -q -rfEs --ignore=tests/reliability $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5)"; exit 0; fi; \
	exit $$rc

# The reliability suite (docs/reliability.md): fuzzed files and arguments, kill -9 at every
# promotion step, racing first runs, a secrets scan of everything a run writes. Bounded in time.
reliability: install
	@$(BIN)/python -m pytest tests/reliability -q -rfEs $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check src tests bench evals

bench: install
	@for f in bench/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf .aliasgate mlflow.db mlruns reports/eval-* .pytest_cache
