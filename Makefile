# The two commands of the README:
#   make demo   set everything up and run the built-in recipe end to end
#   make test   set everything up and run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test clean-demo

setup:
	bash tools/install.sh

demo: setup
	cd recipes/synth && PATH="$(abspath $(VENV))/bin:$$PATH" bash run.sh

test: setup
	$(PY) -m pytest -q tests

clean-demo:
	rm -rf recipes/synth/corpus recipes/synth/data recipes/synth/exp
