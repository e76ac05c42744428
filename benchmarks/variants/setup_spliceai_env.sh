#!/usr/bin/env bash
# Build a separate, CPU-only virtual environment holding the ORIGINAL SpliceAI tool
# (spliceai 1.3.1 + TensorFlow CPU + tf-keras), used as the parity anchor for
# pmtoolkit's torch port (issue 25, item 2). Never touches the main environment.
#
# Usage: benchmarks/variants/setup_spliceai_env.sh [VENV_DIR]
#        (or SPLICEAI_ENV=/path benchmarks/variants/setup_spliceai_env.sh)
#        PYTHON=python3.11 selects the interpreter the venv is built from.
# Idempotent: an existing venv is reused, installed pins are re-checked, and the
# smoke test at the end loads one model through tf_keras.
set -euo pipefail

VENV="${1:-${SPLICEAI_ENV:-/tmp/spliceai-anchor}}"
PY="${PYTHON:-python3}"
SPLICEAI_VERSION="${SPLICEAI_VERSION:-1.3.1}"
TF_VERSION="${TF_VERSION:-2.21.0}"   # tensorflow-cpu and tf-keras, same version

if [ ! -x "$VENV/bin/python" ]; then
    echo "creating venv $VENV (from $($PY -c 'import sys; print(sys.executable)'))"
    "$PY" -m venv "$VENV"
else
    echo "reusing venv $VENV"
fi
VPY="$VENV/bin/python"

# pip inside the venv only; PIP_REQUIRE_VIRTUALENV guards against a stray global install.
export PIP_REQUIRE_VIRTUALENV=1
export PIP_DISABLE_PIP_VERSION_CHECK=1

"$VPY" -m pip install -q --upgrade "pip" "setuptools<81" wheel

# numpy<2: spliceai 1.3.1 one_hot_encode calls np.fromstring on text (removed in numpy 2).
# setuptools<81: spliceai.utils imports pkg_resources (dropped from setuptools 81).
# tensorflow-cpu: CPU-only wheel, no CUDA libraries pulled in.
# pandas<3: spliceai predates pandas 3 (new default string dtype); keep the old behaviour.
# biopython: pyfaidx reads bgzip-compressed FASTA through Bio.bgzf.
"$VPY" -m pip install -q \
    "spliceai==${SPLICEAI_VERSION}" \
    "tensorflow-cpu==${TF_VERSION}" \
    "numpy<2" \
    "setuptools<81" \
    "pysam" "pyfaidx" "pandas<3" "biopython"
# tf-keras (Keras 2 API; Keras 3 cannot read spliceai's HDF5 models) declares a dependency
# on the `tensorflow` wheel, which would install a second TensorFlow over tensorflow-cpu.
# Its only dependency is TensorFlow itself, so install it without dependencies, at the
# version matching tensorflow-cpu.
"$VPY" -m pip install -q --no-deps "tf-keras==${TF_VERSION}"

# Guard: no CUDA wheels may have slipped in (e.g. via a plain `tensorflow` dependency).
if "$VPY" -m pip list 2>/dev/null | grep -Ei '^(nvidia-|tensorflow |tensorflow-gpu )'; then
    echo "ERROR: GPU/CUDA packages present in $VENV (see above)" >&2
    exit 1
fi

# Smoke test: import spliceai.utils with the legacy (tf_keras) Keras, load one model.
TF_USE_LEGACY_KERAS=1 TF_CPP_MIN_LOG_LEVEL=2 CUDA_VISIBLE_DEVICES="" "$VPY" - <<'PY'
import importlib.metadata as md, os
import tf_keras, numpy, tensorflow as tf
from pkg_resources import resource_filename
import spliceai.utils  # noqa: F401  (needs pkg_resources + keras import to work)
m = tf_keras.models.load_model(resource_filename('spliceai', 'models/spliceai1.h5'), compile=False)
print('ok: model', m.name, 'params', m.count_params())
for p in ('spliceai', 'tensorflow-cpu', 'tf-keras', 'numpy', 'pysam', 'pyfaidx', 'pandas', 'setuptools', 'biopython'):
    try:
        print(f'{p}=={md.version(p)}')
    except md.PackageNotFoundError:
        print(f'{p}: not installed')
PY
echo "SpliceAI anchor environment ready: $VPY"
