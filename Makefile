# mlbuild — the commands a developer and CI use. `make help` lists them.
PYTHON ?= python3
STAMP  := .mlbuild/installed.stamp

.PHONY: help install pipeline test unit integration benchmark lint clean

help:
	@echo "make pipeline     install, then run the full pipeline on the built-in data"
	@echo "make test         install, then run the whole test suite (what CI runs)"
	@echo "make unit         only the fast unit tests"
	@echo "make integration  only the integration tests (real processes)"
	@echo "make benchmark    the benchmarks under benchmarks/ (prints figures)"
	@echo "make lint         ruff and the import-layering contracts"

# Re-install only when the project's dependencies change.
$(STAMP): pyproject.toml
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@mkdir -p $(dir $@) && touch $@

install: $(STAMP)

pipeline: install
	$(PYTHON) -m luigi --module tasks FullPipeline

test: install
	$(PYTHON) -m pytest -q

unit: install
	$(PYTHON) -m pytest -q tests/unit

integration: install
	$(PYTHON) -m pytest -q tests/integration

benchmark: install
	$(PYTHON) benchmarks/noop_fanin.py

lint: install
	$(PYTHON) -m ruff check mlbuild tasks tests benchmarks
	lint-imports

clean:
	rm -rf .mlbuild reports
