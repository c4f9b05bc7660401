# Each target sets up what it needs on its own: `make demo` and `make test` are the
# whole installation on a fresh Debian machine.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
MOSQUITTO := $(shell command -v mosquitto 2>/dev/null || command -v /usr/sbin/mosquitto 2>/dev/null)
VICTORIA  := $(shell command -v victoria-metrics 2>/dev/null || command -v /usr/bin/victoria-metrics 2>/dev/null)
CHROMIUM  := $(shell command -v chromium 2>/dev/null || command -v /usr/bin/chromium 2>/dev/null)
RABBITMQ  := $(wildcard /usr/lib/rabbitmq/bin/rabbitmq-server)
INITDB    := $(firstword $(wildcard /usr/lib/postgresql/*/bin/initdb) $(shell command -v initdb 2>/dev/null))

.PHONY: demo test bench bench-peer lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install when the dependency list changes.
$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[$*]'
	touch $@

demo: $(VENV)/.installed-demo
	$(BIN)/officegw demo

test: $(VENV)/.installed-test mosquitto victoria-metrics chromium rabbitmq-server postgresql
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-test mosquitto
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/availability.py
	$(BIN)/python benchmarks/rooms.py
	$(BIN)/python benchmarks/restart.py
	$(BIN)/python benchmarks/replica.py
	$(BIN)/python benchmarks/discovery.py
	$(BIN)/python benchmarks/reports.py

# officegw next to Node-RED on the same broker and messages (issue 17). Needs node
# and npm; installs the Node-RED pinned in benchmarks/node_red/package.json into
# ~/.cache/officegw-bench/node-red once.
bench-peer: $(VENV)/.installed-test mosquitto
	$(BIN)/python benchmarks/peer.py

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The tests start private mosquitto brokers; install it when we may, else say what to do.
.PHONY: mosquitto
mosquitto:
ifeq ($(MOSQUITTO),)
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo "mosquitto not found: installing it with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null; \
	else \
		echo "make test needs the mosquitto broker: install it (Debian/Ubuntu: sudo apt-get install mosquitto) and run make test again" >&2; \
		exit 1; \
	fi
endif

# The InfluxDB export tests write to a private VictoriaMetrics (it speaks the
# InfluxDB v2 write API); same policy as mosquitto.
.PHONY: victoria-metrics
victoria-metrics:
ifeq ($(VICTORIA),)
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo "victoria-metrics not found: installing it with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq victoria-metrics >/dev/null; \
	else \
		echo "make test needs victoria-metrics (InfluxDB export tests): install it (Debian/Ubuntu: sudo apt-get install victoria-metrics) and run make test again" >&2; \
		exit 1; \
	fi
endif

# The dashboard's browser tests drive Debian's chromium (playwright never downloads a
# browser here); same policy as mosquitto.
.PHONY: chromium
chromium:
ifeq ($(CHROMIUM),)
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo "chromium not found: installing it with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "make test needs chromium (dashboard browser tests): install it (Debian: sudo apt-get install chromium) and run make test again" >&2; \
		exit 1; \
	fi
endif

# The broker tests run on private RabbitMQ nodes too (tests/rabbitmq.py); the service the
# package starts is never used.
.PHONY: rabbitmq-server
rabbitmq-server:
ifeq ($(RABBITMQ),)
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo "rabbitmq-server not found: installing it with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null; \
	else \
		echo "make test needs rabbitmq-server (broker tests on RabbitMQ): install it (Debian/Ubuntu: sudo apt-get install rabbitmq-server) and run make test again" >&2; \
		exit 1; \
	fi
endif

# The shared-store, standby and topology tests (and benchmarks/campus.py) start a
# private PostgreSQL from Debian's binaries (simulators/postgres.py: initdb + pg_ctl on a
# random port); the service the package starts is never used.
.PHONY: postgresql
postgresql:
ifeq ($(INITDB),)
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo "postgresql not found: installing it with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else \
		echo "make test needs postgresql (shared-store and topology tests): install it (Debian/Ubuntu: sudo apt-get install postgresql) and run make test again" >&2; \
		exit 1; \
	fi
endif

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
