# The two commands a newcomer runs:  make demo   and   make test
# Both set everything up first (virtualenv, package, Fashion-MNIST); a second run skips what is done.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
PYTHON3 ?= python3

.PHONY: setup data demo test
setup: $(STAMP) data

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON3) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

data:
	@sh scripts/get-data.sh

demo: setup
	$(VENV)/bin/greedyprune demo

test: setup
	OMP_NUM_THREADS=2 $(PY) -m pytest
