# Market7: the README's two commands are `make run` and `make test`.
# Both need only Python 3.11+; they create .venv and install requirements.txt first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
export PORT
# daphne (websockets) listens beside gunicorn (HTTP); pages connect to it on their own host.
# Given to `serve` only: the tests run their own servers (an inherited value is dropped there).
MARKET7_WS_PORT ?= $(shell expr $(PORT) + 1)
STAMP  := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
WITH_REDIS := $(BIN)/python -m market7.embedded_redis run --

.PHONY: install run serve setup test bench lint stop-redis clean

install: $(STAMP)

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit("Market7 needs Python 3.11+") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

## make run: install, migrate, import the bundled real data, create the demo user and bots,
## then serve http://127.0.0.1:$(PORT): gunicorn (HTTP) + daphne (websockets, :$(MARKET7_WS_PORT))
## + Celery worker + beat (Ctrl-C stops all). Sizing and several hosts: docs/deploy.md.
run: install
	@$(WITH_REDIS) $(MAKE) --no-print-directory setup serve

setup:
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py import_candles --bundled
	$(BIN)/python manage.py demo_setup

serve:
	@echo "Market7 on http://127.0.0.1:$(PORT)  (websockets on :$(MARKET7_WS_PORT); Ctrl-C to stop)"
	$(BIN)/python -m market7.metrics_reset
	MARKET7_WS_PORT=$(MARKET7_WS_PORT) PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho --procfile Procfile start --port $(PORT)

## make test: the whole suite, on the embedded defaults or on DATABASE_URL / REDIS_URL.
test: install
	@unset MARKET7_WS_PORT; $(WITH_REDIS) $(BIN)/python -m pytest $(PYTEST_ARGS)

## make bench: speed and memory figures (printed, never asserted).
bench: install
	@$(WITH_REDIS) sh -c 'for b in benchmarks/[!_]*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done'

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

stop-redis:
	-$(BIN)/python -m market7.embedded_redis stop

clean: stop-redis
	rm -rf var/staticfiles var/test_market7.sqlite3* .pytest_cache
