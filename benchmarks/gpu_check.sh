#!/usr/bin/env bash
# The GPU check, in one call of at most 8 minutes on one H100/H200 (run from the repository root):
#   1. training and inference img/s of resnet50 through our loop, from the image cache and from
#      synthetic batches on the GPU (the ceiling), at 224x224 and 240x320, bf16, channels_last,
#      torch.compile off and on (benchmarks/gpu_check.py prints the table);
#   2. the demo chain end to end on CUDA (generate, tune, train 3 folds, pseudo-label, submit).
#
#   benchmarks/gpu_check.sh [--wheels DIR] [--cpu]
#
# --wheels DIR  first pip-installs DIR/*.whl into /tmp/site (a GPU machine with torch and timm but
#               without kedro, mlflow, albumentations or pydantic, and no network).
# --cpu         the same, small and on the CPU, without torch.compile or the chain (which the
#               test suite runs), so that CI exercises this script.
set -euo pipefail
cd "$(dirname "$0")/.."

cpu=0
wheels=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --cpu) cpu=1; shift ;;
        --wheels) wheels="$2"; shift 2 ;;
        *) echo "usage: $0 [--wheels DIR] [--cpu]" >&2; exit 2 ;;
    esac
done

PYTHON="${PYTHON:-$(command -v python3)}"
[[ -x .venv/bin/python ]] && PYTHON=.venv/bin/python
if [[ -n "$wheels" ]]; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$wheels"/*.whl
    export PYTHONPATH="/tmp/site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1

if [[ $cpu == 1 ]]; then
    "$PYTHON" benchmarks/gpu_check.py --device cpu --model resnet18 --sizes 48x64 --images 96 --batch-size 32 \
        --workers 2 --epochs 1 --compile off
    exit 0
fi

"$PYTHON" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device: use --cpu'; print(torch.cuda.get_device_name())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PYTHON" benchmarks/gpu_check.py --device cuda

# The demo chain, on CUDA: conf/demo's CPU settings switched to the GPU from the command line.
cuda="runtime.device=cuda,runtime.amp=true,runtime.channels_last=true,runtime.num_workers=8,inference.amp=true"
started=$(date +%s)
"$PYTHON" -m kedro run --env=demo --pipelines=demo_data
"$PYTHON" -m kedro run --env=demo --pipelines=pseudo_label --params="$cuda"
echo "demo chain on CUDA: $(( $(date +%s) - started )) s end to end"
# The folds side by side (ThreadRunner): each claims a free GPU, and waits for one when there are fewer.
started=$(date +%s)
"$PYTHON" -m kedro run --env=demo --pipelines=training --runner=ThreadRunner --params="$cuda,training.epochs=2"
echo "demo folds under the ThreadRunner on $("$PYTHON" -c 'import torch; print(torch.cuda.device_count())') GPU(s): $(( $(date +%s) - started )) s"
