# The two commands of the README:
#   make demo   create .venv if needed, install everything, run the main job
#   make test   same install if needed, then the test suite
# The second environment, with mmpretrain instead of mmselfsup + mmcls
# (they cannot share one with mmdet), lives in .venv-mmpretrain:
#   make test ENV=mmpretrain      make demo ENV=mmpretrain
#
# An ENV inherited from the shell counts only when it names one of the two:
# POSIX shells read an ENV variable as a start-up file, which some machines set.
ifneq ($(filter $(ENV),mmselfsup mmpretrain),)
STACK := $(ENV)
else ifeq ($(origin ENV),command line)
$(error ENV=$(ENV): expected mmselfsup (default) or mmpretrain)
else
STACK := mmselfsup
endif
ifeq ($(STACK),mmselfsup)
VENV ?= .venv
else
VENV ?= .venv-$(STACK)
endif

PY := $(VENV)/bin/python
# FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="8.0;9.0" make install: mmcv with CUDA ops, built
# without a GPU (tools/install/build_mmcv.py); its own stamp, so an installed CPU build reruns it.
STAMP := $(VENV)/.crosscl_mm-installed$(if $(filter 1,$(FORCE_CUDA)),-cuda)
INSTALL_INPUTS := setup.py requirements/constraints.txt requirements/common.txt requirements/$(STACK).txt \
	requirements/mim.txt requirements/tests.txt tools/install/install_env.sh \
	tools/install/build_mmcv.py
PYTEST_ARGS ?=
DEMO_DIR ?= work_dirs/demo$(if $(filter mmpretrain,$(STACK)),-mmpretrain)
# In the mmpretrain environment the demo's baseline is mmpretrain's own MoCo v2.
DEMO_ARGS ?= $(if $(filter mmpretrain,$(STACK)),--baseline mocov2)

.PHONY: install test test-all demo clean-venv

install: $(STAMP)

$(STAMP): $(INSTALL_INPUTS)
	STACK=$(STACK) VENV=$(VENV) bash tools/install/install_env.sh
	touch $@

test: $(STAMP)
	$(PY) -m pytest tests $(PYTEST_ARGS)

test-all: $(STAMP)
	$(PY) -m pytest tests -m "slow or not slow" $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) tools/demo.py --work-dir $(DEMO_DIR) $(DEMO_ARGS)

clean-venv:
	rm -rf $(VENV)
