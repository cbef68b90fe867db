# The two commands of the README:
#   make demo   create .venv if needed, install everything, run the main job
#   make test   same install if needed, then the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.crosscl_mm-installed
INSTALL_INPUTS := setup.py requirements/constraints.txt requirements/mmselfsup.txt \
	requirements/mim.txt requirements/tests.txt tools/install/install_env.sh \
	tools/install/build_mmcv.py
PYTEST_ARGS ?=
DEMO_DIR ?= work_dirs/demo

.PHONY: install test test-all demo clean-venv

install: $(STAMP)

$(STAMP): $(INSTALL_INPUTS)
	VENV=$(VENV) bash tools/install/install_env.sh
	touch $@

test: $(STAMP)
	$(PY) -m pytest tests $(PYTEST_ARGS)

test-all: $(STAMP)
	$(PY) -m pytest tests -m "slow or not slow" $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) tools/demo.py --work-dir $(DEMO_DIR)

clean-venv:
	rm -rf $(VENV)
