#!/usr/bin/env bash
# The GPU suite on one accelerator (benchmarks/gpu_suite.py; target under 8 minutes, compiles included):
# prefill and decode at batch 1/16/64/256 and a bf16 train step for the SmolLM2-135M and Llama-3.2-1B
# architectures (random weights), and a 100-agent society round of the 135M one, each with its roofline
# fraction; JSON to $OUT/gpu_suite.json (or ./gpu_suite.json), a table at the end of the output.
#
#   benchmarks/gpu.sh                       # the whole suite
#   benchmarks/gpu.sh --sections prefill    # any gpu_suite.py flags pass through (--help lists them)
#   benchmarks/gpu.sh --smoke               # tiny sizes, runs anywhere (the CPU too)
#
# The package travels as the working tree: it runs from the repository root with PYTHONPATH set (no
# install). Compiled programs are cached in $JAX_COMPILATION_CACHE_DIR, so a rerun on the same machine
# spends less of its time compiling (the suite's timings exclude compiles either way).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export HF_HUB_OFFLINE=1
export JAX_COMPILATION_CACHE_DIR="${JAX_COMPILATION_CACHE_DIR:-/tmp/sandbox_jax_jax_cache}"
# The train steps' activations are large (gpu_suite.Sizes.train_groups): let XLA take 90% of the card
# rather than its default 75% (this process is the card's only user).
export XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}"
out_dir="${OUT:-.}"
exec "${PYTHON:-python3}" benchmarks/gpu_suite.py --out "$out_dir/gpu_suite.json" "$@"
