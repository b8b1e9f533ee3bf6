# jupyterhub-spaces: two commands do everything on a fresh Debian/Ubuntu machine.
#
#   make demo   set up, then run the embedded demo on http://127.0.0.1:8000
#   make test   set up, then run every test
#   make images REGISTRY=registry.example.org/team   build and push the three images
#
# Variables:
#   PYTEST_ARGS   extra pytest arguments, e.g. make test PYTEST_ARGS="tests/unit -k demo"
#   SPACES_TEST_POSTGRES_URL   the PostgreSQL server the tests use (see scripts/setup.d/30-postgres.sh)
#   REGISTRY, TAG, RSTUDIO_DEB_URL, PLATFORM   for `make images` (see scripts/build-images.sh)

SHELL := /bin/bash
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
VENV := $(ROOT)/.venv
VAR := $(ROOT)/var
PYTEST_ARGS ?=
SPACES_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres
export SPACES_TEST_POSTGRES_URL

.DEFAULT_GOAL := help
REGISTRY ?=
TAG ?=
RSTUDIO_DEB_URL ?=
PLATFORM ?=
.PHONY: help demo test setup-demo setup-test docs images demo-needs-root

help: ## show this help
	@echo "jupyterhub-spaces"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup-demo: ## install what the demo needs (.venv, node_modules, ...)
	@scripts/setup.sh demo

setup-test: ## install what the tests need (adds PostgreSQL, test tools)
	@scripts/setup.sh test

demo-needs-root:
	@if [ "$$(id -u)" != 0 ]; then \
		echo "make demo needs root: it installs bubblewrap, and each user's sessions run" \
			"as their own Unix account (created on first use) in a bubblewrap sandbox." \
			"Run: sudo make demo" >&2; \
		exit 1; \
	fi

demo: demo-needs-root setup-demo ## run the embedded demo on http://127.0.0.1:8000 (Ctrl-C stops it)
	@mkdir -p -m 0700 $(VAR)
	@echo "Starting JupyterHub on http://127.0.0.1:8000 (state in $(VAR); the demo password is printed below)"
	cd $(VAR) && PATH="$(VENV)/bin:$$PATH" $(VENV)/bin/jupyterhub -f $(ROOT)/hub_config/jupyterhub_config.py

test: setup-test ## run every test (unit, integration, browser, kubernetes)
	@set +e; PATH="$(VENV)/bin:$$PATH" $(VENV)/bin/python -m pytest -q -ra \
		--durations=15 -p no:cacheprovider --continue-on-collection-errors $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then \
		echo "pytest collected no tests (PYTEST_ARGS='$(PYTEST_ARGS)' selects nothing?)" >&2; \
	fi; \
	exit $$status

docs: ## regenerate docs/configuration.md from the settings' help
	$(VENV)/bin/python scripts/gen_config_docs.py > docs/configuration.md

images: ## build and push the hub, workbench and sandbox images: make images REGISTRY=<registry/path>
	@scripts/build-images.sh --registry "$(REGISTRY)" \
		$(if $(TAG),--tag "$(TAG)") $(if $(RSTUDIO_DEB_URL),--rstudio-deb "$(RSTUDIO_DEB_URL)") \
		$(if $(PLATFORM),--platform "$(PLATFORM)")
