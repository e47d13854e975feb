#!/usr/bin/env bash
# The GPU check (bench/gpu_check.py): bf16 training steps of the small model at real shapes and a
# projector-only step of the 7B model on one GPU, in a few minutes. Needs PyTorch, transformers,
# timm and safetensors; no Ray, no vLLM, no network. Ends with a RESULT line.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec timeout 480 "$PY" bench/gpu_check.py "$@"
