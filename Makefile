# One entry point for people and CI. Every target sets up what it needs.
#   make demo   train the demo CNN with the callback, then serve TensorBoard on 127.0.0.1:$(PORT)
#   make test   lint (ruff, and ESLint for frontend/) and run the whole test suite
#   make bench  run every benchmark and print one table
#   make peers  install the peer tools the benchmarks compare with (tf-keras-vis) into
#               artifacts/peers, outside the test environment
PYTHON ?= python3
NPM    ?= npm
VENV   ?= .venv
PY     := $(VENV)/bin/python
ESLINT := node_modules/.bin/eslint
PORT   ?= 6006
LOGDIR ?= demo/logs
DEMO_ARGS ?=
BENCH_ARGS ?=

.PHONY: venv demo test lint eslint format bench peers clean chromium node

$(VENV)/.installed: setup.py constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[cpu,test]"
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(PY) -m demo.run --logdir $(LOGDIR) --port $(PORT) $(DEMO_ARGS)

# ESLint (flat config: eslint.config.js) comes from npm, pinned by package.json and
# package-lock.json, into the git-ignored node_modules/: Debian's eslint (6.x) predates flat
# configs. ESLint 9 runs on Debian's Node.js 18 as well as on newer ones.
node_modules/.installed: package.json package-lock.json | node
	$(NPM) ci --no-audit --no-fund --loglevel=error
	touch $@

eslint: node_modules/.installed

# As root with apt, install Node.js and npm when missing, otherwise say what to install.
node:
	@{ command -v node && command -v npm; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; \
	  else echo "make lint needs Node.js (>= 18.18) and npm for ESLint: sudo apt-get install nodejs npm" >&2; exit 1; fi; }

lint: venv eslint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(ESLINT) .

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
	rm -rf $(VENV) node_modules build dist *.egg-info artifacts
