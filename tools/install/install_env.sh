#!/usr/bin/env bash
# Create (or complete) the project's virtual environment: torch, mmcv built
# with ops for that torch, the OpenMMLab stack pinned in
# requirements/constraints.txt, openmim, and crosscl_mm in editable mode.
# Idempotent: every step checks what is already there. Fails loudly.
#
#   VENV=.venv PYTHON=python3 TORCH_SPEC="torch torchvision" bash tools/install/install_env.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

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
    # shellcheck disable=SC2086
    pip_install $TORCH_SPEC
fi

step "numpy<2 and what it implies (opencv-python<4.11)"
pip_install -q -c "$CONSTRAINTS" numpy opencv-python

if "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '2.0.1'" 2>/dev/null; then
    step "mmcv $("$PY" -c 'import mmcv; print(mmcv.__version__)') with ops already installed"
else
    step "mmcv 2.0.1 with ops for this torch (a cached wheel, or a build of about 25 minutes on 2 cores)"
    "$PY" tools/install/build_mmcv.py
fi

step "OpenMMLab stack: mmengine, mmcls, mmselfsup, mmdet, pycocotools, scikit-image"
pip_install -q -c "$CONSTRAINTS" -r requirements/mmselfsup.txt -r requirements/tests.txt

step "openmim without the dependencies that would downgrade setuptools"
pip_install -q -c "$CONSTRAINTS" --no-deps openmim
pip_install -q -c "$CONSTRAINTS" -r requirements/mim.txt

step "crosscl_mm (editable, egg-link layout so that mim finds configs and tools in crosscl_mm/.mim)"
"$PY" -m pip uninstall -y -q crosscl_mm >/dev/null 2>&1 || true
"$PY" setup.py -q develop --no-deps
"$PY" -c "import crosscl_mm, os; assert os.path.isdir(os.path.join(os.path.dirname(crosscl_mm.__file__), '.mim', 'configs'))"

step "checking the environment"
"$PY" - <<'PY'
import numpy, torch, mmcv, mmengine, mmdet, mmselfsup
from mmcv.ops import roi_align  # noqa: F401  compiled ops are present
import crosscl_mm
assert numpy.__version__.startswith('1.'), f'numpy {numpy.__version__} found; mmcv 2.0.1 needs numpy < 2'
print(f'torch {torch.__version__} | mmcv {mmcv.__version__} | mmengine {mmengine.__version__} | '
      f'mmdet {mmdet.__version__} | mmselfsup {mmselfsup.__version__} | numpy {numpy.__version__} | '
      f'crosscl_mm {crosscl_mm.__version__} | fixes applied: '
      + ', '.join(k for k, v in crosscl_mm.compat.APPLIED.items() if v))
PY
step "done"
