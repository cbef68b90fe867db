#!/usr/bin/env bash
# The GPU check (docs/benchmark.md#gpu): pooling parity with mmcv's CUDA kernel, AMP,
# host synchronisations, the pretraining benchmark and one NCCL launch, on a fresh GPU
# machine with no network, from the repository root:
#
#   bash tools/analysis_tools/gpu_check.sh --prepare   # here, with network: wheels into .whl/
#   bash tools/analysis_tools/gpu_check.sh             # there: .whl/ travels with the tree
#   bash tools/analysis_tools/gpu_check.sh --dry-run   # any machine: this environment, CPU, tiny
#
# On the GPU machine it installs the carried wheels into $SITE (nothing else is touched),
# builds mmcv 2.0.1's CPU ops for the machine's torch and, at the same time, mmcv's
# PrRoIPool CUDA kernel alone (MAX_JOBS=16), then runs tools/analysis_tools/gpu_check.py.
# Extra arguments go to gpu_check.py (e.g. --stages prroi bench).
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
WHEELS=${WHEELS:-.whl}
SITE=${SITE:-/tmp/crosscl_site}
BUILD=${BUILD:-/tmp/crosscl_build}
MMCV=mmcv-2.0.1
export MAX_JOBS=${MAX_JOBS:-16}
# What travels: the stack of requirements/constraints.txt for Python 3.12 on x86-64 Linux,
# and the packages it imports that the GPU image lacks (its torch, numpy 2, opencv, scipy,
# scikit-image and matplotlib are used as they are, except numpy, pinned below 2 here too).
CARRIED=(mmengine==0.10.7 mmdet==3.3.0 mmselfsup==1.0.0 mmcls==1.0.0rc6 pycocotools==2.0.11
         numpy==1.26.4 setuptools==79.0.1 addict==2.4.0 yapf==0.43.0 platformdirs==4.14.8
         termcolor==3.3.0 terminaltables==3.1.10 shapely==2.2.0 model-index==0.1.11
         ordered-set==4.1.0 future==1.0.0)
LIMIT_MIB=64

stamp() { echo "[gpu_check.sh +$((SECONDS))s] $*"; }

if [ "${1:-}" = "--prepare" ]; then
    # Run with the project's environment active (pip needs torch to read mmcv's sdist).
    mkdir -p "$WHEELS"
    "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
        -d "$WHEELS" "${CARRIED[@]}" || exit 1
    "$PY" -m pip download --no-deps --no-binary :all: --no-build-isolation "mmcv==2.0.1" \
        -d "$WHEELS" || exit 1
    wheels=$(du -cb "$WHEELS"/* | tail -1 | cut -f1)
    tree=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
    awk -v w="$wheels" -v t="$tree" -v l="$LIMIT_MIB" 'BEGIN { printf "carried: %.1f MiB of " \
        "wheels + %.1f MiB of tracked files = %.1f MiB (limit %d MiB)\n", w / 2^20, t / 2^20, \
        (w + t) / 2^20, l }'
    [ $((wheels + tree)) -le $((LIMIT_MIB * 1048576)) ] || { echo "over the limit"; exit 1; }
    exit 0
fi

if [ "${1:-}" = "--dry-run" ]; then
    shift
    exec env PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" \
        "$PY" tools/analysis_tools/gpu_check.py --device cpu --dry-run "$@"
fi

stamp "installing $(ls "$WHEELS"/*.whl | wc -l) wheels into $SITE"
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" "$WHEELS"/*.whl || exit 1
export PYTHONPATH="$PWD:$SITE${PYTHONPATH:+:$PYTHONPATH}"
# scipy.sparse and scipy.stats (imported by mmdet through seaborn) are where a scipy built
# for numpy 2 fails under numpy 1.26 (`np.long`); `import scipy` alone passes.
if ! "$PY" -c "import numpy, cv2, scipy.sparse, scipy.stats, skimage, matplotlib, torch" 2>"$BUILD.numpy.log"; then
    stamp "the image's packages do not import with numpy 1.26 ($(tail -1 "$BUILD.numpy.log"));" \
          "using the image's numpy instead (mmcv 2.0.1's adjust_hue may fail under numpy 2)"
    rm -rf "$SITE"/numpy "$SITE"/numpy-* "$SITE"/numpy.libs
fi
rm -rf "$BUILD" && mkdir -p "$BUILD"
tar xzf "$WHEELS/$MMCV.tar.gz" -C "$BUILD" || exit 1

stamp "building mmcv's PrRoIPool CUDA kernel and mmcv's CPU ops (MAX_JOBS=$MAX_JOBS), side by side"
"$PY" tools/analysis_tools/gpu_check.py --build-prroi-ext "$BUILD/$MMCV" "$BUILD/prroi_ext" \
    >"$BUILD/prroi_ext.log" 2>&1 &
prroi=$!
"$PY" tools/analysis_tools/gpu_check.py --build-mmcv-cpu-ops "$BUILD/$MMCV" \
    >"$BUILD/mmcv_ops.log" 2>&1
mmcv_status=$?
stamp "mmcv CPU ops: exit $mmcv_status"; [ $mmcv_status = 0 ] || tail -30 "$BUILD/mmcv_ops.log"
wait $prroi
prroi_status=$?
stamp "PrRoIPool CUDA kernel: exit $prroi_status"; [ $prroi_status = 0 ] || tail -30 "$BUILD/prroi_ext.log"

export PYTHONPATH="$PWD:$BUILD/$MMCV:$SITE${PYTHONPATH#"$PWD:$SITE"}"
export PYTHONUNBUFFERED=1
stamp "running gpu_check.py"
"$PY" tools/analysis_tools/gpu_check.py --device cuda --mmcv-src "$BUILD/$MMCV" \
    --prroi-build "$BUILD/prroi_ext" "$@"
status=$?
stamp "done (exit $status)"
exit $status
