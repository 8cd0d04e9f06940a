# Quorum's front door: `make run` for the app with demo data, `make test` for the checks.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
WORKERS ?= 1

.PHONY: install install-test browser run test lint bench bench-peers clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Stamps: reinstall only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

# llama-cpp-python compiles llama.cpp on its first install (about 8 minutes on two cores): CPU
# only, without the multimodal library nothing here uses, and for any x86-64 CPU with AVX2
# (GGML_NATIVE=OFF) rather than tuned to the machine that builds it: such a build used AMX
# tiles, which virtual machines may not let a process use (the judge server died on its first
# request). pip keeps one built wheel per package version whatever the flags it was built
# with, so the test install has a cache of its own, named after the flags.
LLAMA_CMAKE_ARGS = -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF $(CMAKE_ARGS)
TEST_PIP_CACHE = $(HOME)/.cache/quorum-pip/$(shell echo '$(LLAMA_CMAKE_ARGS)' | cksum | cut -d' ' -f1)

$(VENV)/.installed-test: pyproject.toml | $(PY)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" PIP_CACHE_DIR="$(TEST_PIP_CACHE)" \
		$(PY) -m pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# The web server (uvicorn, ASGI) and a Celery worker side by side; Ctrl-C stops both.
run: install
	DEBUG=1 $(PY) manage.py migrate --noinput
	DEBUG=1 $(PY) manage.py load_demo
	@echo "Quorum on http://127.0.0.1:$(PORT)/ (Ctrl-C stops the web server and the worker)"
	@trap 'kill $$worker $$web 2>/dev/null; wait' INT TERM; \
	DEBUG=1 $(VENV)/bin/celery -A quorum worker --loglevel=warning --concurrency=$(WORKERS) & worker=$$!; \
	DEBUG=1 $(VENV)/bin/uvicorn quorum.asgi:application --host 127.0.0.1 --port $(PORT) & web=$$!; \
	wait

lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Browser tests drive Debian's chromium; Playwright's own browser download is not used.
browser:
	@[ -x /usr/bin/chromium ] || (apt-get update -qq && apt-get install -y -qq chromium)

test: lint browser
	$(VENV)/bin/pytest

bench: install-test
	$(PY) tests/bench/run.py
	$(PY) tests/bench/bench_metrics.py
	$(PY) tests/bench/bench_disagreement.py
	$(PY) tests/bench/bench_judge.py
	$(PY) tests/bench/bench_browse.py
	$(PY) tests/bench/bench_report.py
	# 200 annotators on 2,000 items, each taking ~20 s to read a pair (the latency target's
	# load), then the same crowd without pauses on 300 items (the server's capacity).
	$(PY) tests/bench/bench_annotators.py --think 20
	$(PY) tests/bench/bench_annotators.py --think 0 --items 300
	# Per request: 1, 8 and 32 annotators in a closed loop, 300 answers each, 2 web workers.
	$(PY) tests/bench/bench_annotators.py --closed-loop 1,8,32

# Optional: the same closed loop against Potato (installed in a throwaway virtualenv, never a
# dependency of Quorum) and Quorum in one run, side by side with the ratios.
bench-peers: install-test
	$(PY) tests/bench/bench_peers.py --closed-loop 1,8,32

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
