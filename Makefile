# mlbuild — the commands a developer and CI use. `make help` lists them.
PYTHON ?= python3
STAMP  := .mlbuild/installed.stamp

.PHONY: help install services services-stop pipeline example image train-image ci test test-in-image unit integration accuracy accuracy-full benchmark lint clean

help:
	@echo "make pipeline     install, start services, run the full pipeline on the built-in data"
	@echo "make example      run the regression example (examples/diabetes) to its acceptance test"
	@echo "make image        build the serving image (BuildImage) for the current model"
	@echo "make train-image  build the training image (mlbuild/tasks/files/Dockerfile.train)"
	@echo "make test         install, start services, run the whole test suite (what CI runs)"
	@echo "make services     start the services the tests use (S3 and Batch API, Docker, registry)"
	@echo "make services-stop  stop them"
	@echo "make unit         only the fast unit tests"
	@echo "make test-in-image  the unit tests inside the test image (as CI's unit stage)"
	@echo "make integration  only the integration tests (real processes)"
	@echo "make accuracy     the accuracy tests of the released model, fast tier"
	@echo "make accuracy-full  the same on the whole test split (scheduled runs)"
	@echo "make benchmark    the benchmarks under benchmarks/ (starts the services; prints figures)"
	@echo "make lint         ruff and the import-layering contracts"
	@echo "make ci           the declared cycle's stages (configs/ci.toml), locally, in order"

# Re-install only when the project's dependencies change.
$(STAMP): pyproject.toml
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[dev]' \
		--config-settings editable_mode=compat
	@mkdir -p $(dir $@) && touch $@

install: $(STAMP)

# Idempotent: a service already answering is left as it is.
services: install
	$(PYTHON) -m tests.services start

services-stop:
	$(PYTHON) -m tests.services stop

# The services' environment (Docker engine, local base image, registry on loopback);
# override any of it in your own environment, e.g. MLBUILD_IMAGE_BASE=python:3.11-slim.
SERVICES_ENV = eval "$$($(PYTHON) -m tests.services env)"

pipeline: install services
	$(SERVICES_ENV) && $(PYTHON) -m luigi --module tasks FullPipeline

example: install services
	$(SERVICES_ENV) && cd examples/diabetes && $(PYTHON) -m luigi --module diabetes FullPipeline

image: install services
	$(SERVICES_ENV) && $(PYTHON) -m luigi --module tasks BuildImage

train-image: install services
	$(SERVICES_ENV) && $(PYTHON) -m luigi --module tasks BuildTrainingImage

test: install services
	$(PYTHON) -m pytest -q

# The unit tests inside the test image, as the CI's unit stage runs them.
test-in-image: install services
	$(SERVICES_ENV) && mlbuild stage test-image && mlbuild stage unit --in-image

unit: install
	$(PYTHON) -m pytest -q tests/unit

integration: install services
	$(PYTHON) -m pytest -q tests/integration

accuracy: install
	MLBUILD_ACCURACY_TIER=fast $(PYTHON) -m pytest -q -m accuracy tests/accuracy

accuracy-full: install
	MLBUILD_ACCURACY_TIER=full $(PYTHON) -m pytest -q -m accuracy tests/accuracy

ci: install services
	$(SERVICES_ENV) && mlbuild ci

# The benchmarks use the services (S3, Batch, Docker): started here if they are not up.
benchmark: install services
	$(PYTHON) benchmarks/noop_fanin.py --store local
	$(PYTHON) benchmarks/noop_fanin.py --store s3
	$(PYTHON) benchmarks/s3_transfer.py
	$(PYTHON) benchmarks/accuracy_eval.py
	$(SERVICES_ENV) && $(PYTHON) benchmarks/image_build.py
	$(PYTHON) benchmarks/sweep_workers.py
	$(SERVICES_ENV) && $(PYTHON) benchmarks/batch_roundtrip.py

lint: install
	$(PYTHON) -m ruff check mlbuild tasks tests benchmarks examples
	lint-imports

clean:
	rm -rf .mlbuild reports
