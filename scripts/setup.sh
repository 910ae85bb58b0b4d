#!/usr/bin/env bash
# Creates .venv and installs the project into it, once: later runs only check a stamp.
# torch==2.13.0 goes in first so that no other package can pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_VERSION=2.13.0
stamp=.venv/.installed
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# PyPI's Linux torch wheel is the CUDA build (gigabytes): a torch-<version>+cpu wheel in pip's
# find-links is taken as it is, otherwise torch comes from PyTorch's CPU index (TORCH_INDEX_URL).
links="${PIP_FIND_LINKS:-} $(.venv/bin/python -m pip config get global.find-links 2>/dev/null || true)"
# shellcheck disable=SC2086  # find-links is a space-separated list
if ls $links 2>/dev/null | grep -q "^torch-${TORCH_VERSION}+cpu-"; then
    .venv/bin/python -m pip install --quiet "torch==${TORCH_VERSION}"
else
    .venv/bin/python -m pip install --quiet --index-url "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}" "torch==${TORCH_VERSION}"
fi
.venv/bin/python -c "import torch; assert torch.version.cuda is None, 'not a CPU build of torch'"
.venv/bin/python -m pip install --quiet --config-settings editable_mode=compat -e ".[test,distributed]"
echo "$want" >"$stamp"
