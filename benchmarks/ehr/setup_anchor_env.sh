#!/usr/bin/env bash
# Builds the isolated venv for the PyHealth anchor of the EHR benchmark:
#   benchmarks/.venv-pyhealth  (git-ignored), used by benchmarks/ehr/pyhealth_probe.py and the
#   GRU / RETAIN / Transformer / logistic-regression comparison on patient visit sequences.
# Safe to re-run: an existing venv is reused and pip skips what is already satisfied.
#
#   bash benchmarks/ehr/setup_anchor_env.sh
#
# torch is pinned in every pip call that could pull it in (the pinned version resolves to a
# local CPU wheel; an unpinned one would drag in several GB of CUDA packages).
#
# Why pyhealth 1.1.4 and not the newest 1.1.6 / 1.1.5: those import torchvision at import time
# (pyhealth.datasets -> featurizers/image.py, pyhealth.models -> graph_torchvision_model.py),
# and the only torchvision matching torch 2.13.0 in the registry (0.28.0) is a CUDA build
# (+cu130) whose _C.so needs libtorch_cuda.so, so `import torchvision` fails against the CPU
# torch ("RuntimeError: operator torchvision::nms does not exist"). 1.1.4 has the same
# SampleEHRDataset / RNN / RETAIN / Transformer / Trainer API and does not need torchvision.
# Its metadata (torch>=1.8, pandas<2, urllib3<=1.26.15, rdkit, mne, pandarallel, ...) resolves
# with torch pinned, so no --no-deps is needed; two extra constraints are required at run time:
#   numpy<2          pandas<2 (1.5.3) is compiled against numpy 1.x and breaks on numpy 2
#   setuptools<81    pyhealth.models.molerec does `import pkg_resources` at import time
#                    (torch 2.13 itself needs setuptools>=77.0.3)
set -euo pipefail

TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
PYHEALTH_VERSION="${PYHEALTH_VERSION:-1.1.4}"
PYTHON="${PYTHON:-python3}"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${repo_root}/benchmarks/.venv-pyhealth"

if [[ ! -x "${venv}/bin/python" ]]; then
    "${PYTHON}" -m venv "${venv}"
fi
pip=("${venv}/bin/python" -m pip)

"${pip[@]}" install "torch==${TORCH_VERSION}"
"${pip[@]}" install "torch==${TORCH_VERSION}" "pyhealth==${PYHEALTH_VERSION}" "numpy<2" \
    "setuptools>=77.0.3,<81"

if "${pip[@]}" list 2>/dev/null | grep -i nvidia; then
    echo "error: CUDA (nvidia-*) packages ended up in ${venv}; remove the venv and check torch's pin" >&2
    exit 1
fi

"${venv}/bin/python" - <<'PY'
import warnings
from importlib.metadata import version
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")  # molerec's import
import numpy
import pandas
import torch
import pyhealth
from pyhealth.datasets import SampleEHRDataset  # noqa: F401
from pyhealth.models import RETAIN, RNN, Transformer  # noqa: F401
from pyhealth.trainer import Trainer  # noqa: F401
assert torch.__version__.endswith("+cpu"), torch.__version__
print("anchor venv ready: pyhealth", version("pyhealth"), "| torch", torch.__version__,
      "| pandas", pandas.__version__, "| numpy", numpy.__version__)
PY
