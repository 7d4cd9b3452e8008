# One entry point for chores; CI runs the same targets the README shows.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install lock up test lint fmt bench clean reliability soak

install: $(STAMP)

# Every dependency comes from requirements.lock (exact versions and hashes); `make lock`
# regenerates it after a change to pyproject.toml.
$(STAMP): requirements.lock pyproject.toml
	@VENV=$(VENV) bash deploy/local/install.sh
	@touch $(STAMP)

lock: install  ## re-resolve pyproject.toml (runtime + dev) into requirements.lock
	$(VENV)/bin/uv pip compile -q pyproject.toml --extra dev --generate-hashes \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 \
		--no-emit-package cinema-platform $(ARGS) -o requirements.lock

up: install  ## start the whole system with demo data (Ctrl-C stops it)
	$(PY) -m deploy.local up $(ARGS)

test: install  ## run every test
	$(PY) -m pytest $(ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

fmt: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install  ## run the benchmark suite, results in docs/benchmarks/
	$(PY) -m benchmarks.run $(ARGS)

reliability: install  ## storm, faults, fuzzing, authorization and abuse suite (docs/reliability.md)
	$(PY) -m pytest -q tests/reliability $(ARGS)

soak: install  ## the reliability suite scaled up, in rounds, for MINUTES (default 10); not in CI
	$(PY) -m tests.reliability.soak --minutes $(or $(MINUTES),10) $(ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
