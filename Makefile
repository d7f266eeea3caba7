# One entry point for people and CI. Every target sets up what it needs.
#   make demo   train the demo CNN with the callback, then serve TensorBoard on 127.0.0.1:$(PORT)
#   make test   lint (ruff) and run the whole test suite
#   make bench  run every benchmark and print one table
#   make peers  install the peer tools the benchmarks compare with (tf-keras-vis) into
#               artifacts/peers, outside the test environment
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 6006
LOGDIR ?= demo/logs
DEMO_ARGS ?=
BENCH_ARGS ?=

.PHONY: venv demo test lint format bench peers clean chromium

$(VENV)/.installed: setup.py constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[cpu,test]"
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(PY) -m demo.run --logdir $(LOGDIR) --port $(PORT) $(DEMO_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The browser tests drive Debian's chromium (Playwright with executable_path); as root with
# apt, install it when missing, otherwise say what to install.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; \
	  else echo "make test needs Debian's chromium for the browser tests: sudo apt-get install chromium" >&2; exit 1; fi; }

test: lint chromium
	$(PY) -m pytest -q

bench: venv
	$(PY) -m benchmarks.run_all $(BENCH_ARGS)

# tf-keras-vis installs a top-level `tests` package: keep it (and its dependencies) out of
# the test venv; the benchmarks append artifacts/peers to sys.path.
peers: venv
	$(PY) -m pip install -q --no-deps --target artifacts/peers tf-keras-vis==0.8.7 scipy deprecated imageio

clean:
	rm -rf $(VENV) build dist *.egg-info artifacts
