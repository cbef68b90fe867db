#!/usr/bin/env bash
# Create (or complete) the project's virtual environment: torch, mmcv built
# with ops for that torch, the OpenMMLab stack pinned in
# requirements/constraints.txt, openmim, and crosscl_mm in editable mode.
# Idempotent: every step checks what is already there. Fails loudly.
#
#   VENV=.venv PYTHON=python3 TORCH_SPEC="torch torchvision" bash tools/install/install_env.sh
#   STACK=mmpretrain VENV=.venv-mmpretrain bash tools/install/install_env.sh
#
# STACK picks the self-supervised package beside mmdet: mmselfsup (with mmcls,
# the default) or mmpretrain. They cannot share an environment with mmdet, so
# each gets its own virtual environment; both use the same cached mmcv wheel.
set -euo pipefail
cd "$(dirname "$0")/../.."

STACK=${STACK:-mmselfsup}
case "$STACK" in
    mmselfsup|mmpretrain) ;;
    *) echo "ERROR: install failed: STACK=$STACK; expected mmselfsup or mmpretrain" >&2; exit 1 ;;
esac
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch torchvision}
CONSTRAINTS=requirements/constraints.txt
START=$(date +%s)

step() { echo "==> [install $(( $(date +%s) - START ))s] $*"; }
fail() { echo "ERROR: install failed: $*" >&2; exit 1; }
trap 'fail "command on line $LINENO exited with status $? (see the output above)"' ERR

if [ ! -x "$VENV/bin/python" ]; then
    step "creating virtual environment $VENV with $($PYTHON --version 2>&1)"
    "$PYTHON" -m venv "$VENV" || fail "could not create $VENV with $PYTHON"
fi
PY="$VENV/bin/python"
pip_install() { "$PY" -m pip install --disable-pip-version-check --progress-bar off "$@"; }

step "build tools (pip, setuptools<80 for mmcv's pkg_resources and mim, wheel, ninja)"
pip_install -q -c "$CONSTRAINTS" "pip>=23" setuptools wheel ninja

if "$PY" -c "import torch, torchvision" 2>/dev/null; then
    step "torch already installed: $("$PY" -c 'import torch, torchvision; print(torch.__version__, torchvision.__version__)')"
else
    step "installing $TORCH_SPEC (a large download where not cached locally)"
    # Constrained too: torch >= 2.14 requires setuptools >= 77.0.3 and would
    # otherwise take the newest one, whose `setup.py develop` mim cannot follow.
    # shellcheck disable=SC2086
    pip_install -c "$CONSTRAINTS" $TORCH_SPEC
fi
# Whatever an existing torch brought in, settle setuptools inside the pins.
pip_install -q -c "$CONSTRAINTS" "setuptools<80"

step "numpy<2 and what it implies (opencv-python<4.11)"
pip_install -q -c "$CONSTRAINTS" numpy opencv-python

# With FORCE_CUDA=1 an installed CPU build does not count: the CUDA wheel is built (or taken from the cache).
if "$PY" -c "import os, mmcv, mmcv.ops; assert mmcv.__version__ == '2.0.1'
assert os.environ.get('FORCE_CUDA') != '1' or mmcv.ops.get_compiling_cuda_version() != 'not available'" 2>/dev/null; then
    step "mmcv $("$PY" -c 'import mmcv; print(mmcv.__version__)') with ops already installed"
else
    step "mmcv 2.0.1 with ops for this torch (a cached wheel, or a build of 12 to 26 minutes on 2 cores)"
    "$PY" tools/install/build_mmcv.py
fi

step "OpenMMLab stack: mmengine, $STACK, mmdet, pycocotools, scikit-image (requirements/$STACK.txt)"
pip_install -q -c "$CONSTRAINTS" -r "requirements/$STACK.txt" -r requirements/tests.txt
OTHER=$([ "$STACK" = mmselfsup ] && echo mmpretrain || echo "mmselfsup mmcls")
for pkg in $OTHER; do
    if "$PY" -m pip show -q "$pkg" >/dev/null 2>&1; then
        fail "$pkg is installed in $VENV, which is the $STACK environment; mmdet cannot import both (use a fresh VENV)"
    fi
done

step "openmim without the dependencies that would downgrade setuptools"
pip_install -q -c "$CONSTRAINTS" --no-deps openmim
pip_install -q -c "$CONSTRAINTS" -r requirements/mim.txt

step "crosscl_mm (editable, egg-link layout so that mim finds configs and tools in crosscl_mm/.mim)"
"$PY" -m pip uninstall -y -q crosscl_mm >/dev/null 2>&1 || true
"$PY" setup.py -q develop --no-deps
"$PY" -c "import crosscl_mm, os; assert os.path.isdir(os.path.join(os.path.dirname(crosscl_mm.__file__), '.mim', 'configs'))"

step "checking the environment"
STACK=$STACK "$PY" - <<'PY'
import importlib, os
import numpy, torch, mmcv, mmengine, mmdet
from mmcv.ops import roi_align  # noqa: F401  compiled ops are present
stack = importlib.import_module(os.environ['STACK'])
import crosscl_mm
assert numpy.__version__.startswith('1.'), f'numpy {numpy.__version__} found; mmcv 2.0.1 needs numpy < 2'
assert crosscl_mm.EXPORTED_SCOPES == [stack.__name__], crosscl_mm.EXPORTED_SCOPES
print(f'torch {torch.__version__} | mmcv {mmcv.__version__} | mmengine {mmengine.__version__} | '
      f'mmdet {mmdet.__version__} | {stack.__name__} {stack.__version__} | numpy {numpy.__version__} | '
      f'crosscl_mm {crosscl_mm.__version__} | fixes applied: '
      + ', '.join(k for k, v in crosscl_mm.compat.APPLIED.items() if v))
PY
step "done"
