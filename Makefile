# The whole set-up is two commands: `make run` and `make test` (see README.md).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install run test test-fast lint format bench services-up services-down clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

## make run: venv, install, and the embedded demo (no server needed)
run: install
	$(BIN)/nudge demo --customers 200 --days 60 --seed 1 --out demo-out

## make lint: ruff, mypy (strict on shared/), and the import contracts
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## make test: lint, then every test against real Kafka and PostgreSQL started here
## (one BLAS thread: the model fits in the tests are small, and threads only contend)
test: lint
	deploy/browser/chromium.sh ensure
	OPENBLAS_NUM_THREADS=1 deploy/with-services.sh $(BIN)/python -m pytest $(PYTEST_ARGS)

## make test-fast: the tests that need no server
test-fast: install
	$(BIN)/python -m pytest tests/unit -q

## make bench: the benchmarks, on real Kafka and PostgreSQL, against raw baselines
bench: install
	deploy/with-services.sh $(BIN)/python -m bench $(BENCH_ARGS)

services-up:
	deploy/kafka/kafka.sh start
	deploy/postgres/postgres.sh start

services-down:
	deploy/kafka/kafka.sh stop
	deploy/postgres/postgres.sh stop

clean:
	rm -rf $(VENV) demo-out .pytest_cache .mypy_cache .ruff_cache
