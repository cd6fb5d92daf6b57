# aliasgate — two commands on a fresh machine: `make demo` and `make test`.
# Both create .venv if missing and install what they need (llama-cpp-python builds from source
# the first time, ~6–8 min on 2 cores; pip caches the wheel afterwards).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.aliasgate-installed
PYTEST_ARGS ?=

export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test install lint bench clean help

help:
	@echo "make demo    create .venv, install, run eval -> report on the embedded model"
	@echo "make test    create .venv, install, run the test suite (tests/)"
	@echo "make lint    ruff"
	@echo "make bench   run the benchmark scripts in bench/"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

EXTRAS ?= local,dev,judges,embeddings

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -qq -e '.[$(EXTRAS)]'
	@touch $@

install: $(STAMP)

demo: install
	$(BIN)/aliasgate demo

# pytest exits 5 when it collected no test: say so loudly rather than fail obscurely.
test: install
	@$(BIN)/python -m pytest tests/ -q -rfEs $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5)"; exit 0; fi; \
	exit $$rc

lint: install
	$(BIN)/ruff check src tests bench evals

bench: install
	@for f in bench/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf .aliasgate mlflow.db mlruns reports/eval-* .pytest_cache
