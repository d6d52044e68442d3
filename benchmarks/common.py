"""Shared benchmark helpers: the host record, timing, the machine's measured matmul peak, tiny HF models."""

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

# /proc/cpuinfo flag -> name: the extensions that decide which CPU matmul paths exist (bf16 on
# AVX-512-BF16 / AMX is where PyTorch's oneDNN and XLA's CPU backend differ most).
ISA_FLAGS = {"avx2": "AVX2", "avx512f": "AVX-512F", "avx512_bf16": "AVX-512-BF16", "amx_bf16": "AMX-BF16",
             "amx_tile": "AMX-TILE"}
PACKAGES = ("jax", "jaxlib", "flax", "optax", "torch", "transformers")
ENV_PREFIXES = ("XLA_", "JAX_", "TF_CPP_", "TF_ENABLE_ONEDNN", "OMP_", "MKL_", "OPENBLAS_", "ONEDNN_", "DNNL_",
                "TORCH_", "CUDA_VISIBLE_DEVICES", "NVIDIA_TF32_OVERRIDE")


def _lscpu() -> dict[str, str]:
  try:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, env=dict(os.environ, LC_ALL="C"))
  except (OSError, subprocess.SubprocessError):
    return {}
  return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.stdout.splitlines()) if v}


def _cpuinfo() -> dict[str, str]:
  """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
  try:
    text = Path("/proc/cpuinfo").read_text()
  except OSError:
    return {}
  fields = {}
  for line in text.split("\n\n")[0].splitlines():
    key, _, value = line.partition(":")
    fields[key.strip()] = value.strip()
  return fields


def _versions() -> dict[str, str | None]:
  versions = {}
  for name in PACKAGES:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      versions[name] = None
  plugins = sorted(d.metadata["Name"] for d in importlib.metadata.distributions()
                   if (d.metadata["Name"] or "").startswith(("jax-cuda", "jax_cuda", "libtpu")))
  for name in plugins:
    versions[name] = importlib.metadata.version(name)
  return versions


def host_info() -> dict:
  """What a benchmark figure depends on besides the code: CPU model, cores, the ISA extensions that
  matter, library versions, the XLA / thread settings in effect, and JAX's backend and devices."""
  import jax

  lscpu, cpuinfo = _lscpu(), _cpuinfo()
  flags = set((cpuinfo.get("flags") or lscpu.get("Flags") or "").split())
  devices = jax.devices()
  try:
    usable = len(os.sched_getaffinity(0))
  except AttributeError:
    usable = os.cpu_count()
  info = {
      "cpu_model": lscpu.get("Model name") or cpuinfo.get("model name") or platform.processor() or None,
      "cpu_vendor": lscpu.get("Vendor ID") or cpuinfo.get("vendor_id"),
      "architecture": platform.machine(),
      "logical_cpus": os.cpu_count(),
      "usable_cpus": usable,
      "threads_per_core": int(lscpu["Thread(s) per core"]) if lscpu.get("Thread(s) per core", "").isdigit() else None,
      "hypervisor": lscpu.get("Hypervisor vendor"),
      # None: no flags readable here (not Linux x86), so unknown rather than absent.
      "isa": {name: (flag in flags) for flag, name in ISA_FLAGS.items()} if flags else None,
      "python": platform.python_version(),
      "versions": _versions(),
      "env": {k: v for k, v in sorted(os.environ.items()) if k.startswith(ENV_PREFIXES)},
      "jax_backend": jax.default_backend(),
      "jax_devices": {"count": len(devices), "kind": devices[0].device_kind, "platform": devices[0].platform},
  }
  if "torch" in sys.modules:  # only when the benchmark uses torch (importing it here would cost seconds)
    info["torch_threads"] = sys.modules["torch"].get_num_threads()
  return info


def host_text(info: dict) -> str:
  """Three readable lines of `host_info()`."""
  isa = info["isa"]
  if isa is None:
    isa_text = "ISA extensions not readable on this host"
  else:
    have = [n for n, ok in isa.items() if ok]
    lack = [n for n, ok in isa.items() if not ok]
    isa_text = f"ISA: {', '.join(have) or 'none of ' + '/'.join(ISA_FLAGS.values())}" + (
        f"; no {', '.join(lack)}" if lack and have else "")
  cpus = f"{info['logical_cpus']} logical CPUs" + (f" ({info['usable_cpus']} usable)"
                                                    if info["usable_cpus"] != info["logical_cpus"] else "")
  vm = f", {info['hypervisor']} VM" if info.get("hypervisor") else ""
  versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v)
  threads = f"; torch threads {info['torch_threads']}" if "torch_threads" in info else ""
  devices = info["jax_devices"]
  env = " ".join(f"{k}={v}" for k, v in info["env"].items()) or "none of XLA_*/JAX_*/OMP_*/MKL_* set"
  return (f"host: {info['cpu_model']} ({info['architecture']}{vm}), {cpus}; {isa_text}\n"
          f"software: python {info['python']}, {versions}{threads}; jax backend {info['jax_backend']}: "
          f"{devices['count']} x {devices['kind']}\n"
          f"env: {env}")


def write_json(path, data) -> None:
  """Writes `data` as JSON atomically (a temp file beside it, then rename)."""
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
  tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
  os.replace(tmp, path)


def add_host_args(parser):
  parser.add_argument("--host-json", metavar="PATH", help="also write the host record (benchmarks.common.host_info) "
                                                          "as JSON to PATH")


def report_host(json_path=None) -> dict:
  """Prints the host record (every benchmark starts its output with it); writes it as JSON if asked."""
  info = host_info()
  print(host_text(info), flush=True)
  if json_path:
    write_json(json_path, info)
  return info


def timeit(fn, *, warmup: int = 2, repeats: int = 5) -> float:
  """Median seconds per call of `fn()` (fn must block until its result is ready)."""
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def timeit_alternating(fns: dict, *, warmup: int = 1, repeats: int = 7) -> dict:
  """{name: [seconds of each call]}: the fns (each blocking until ready) called in turn, `repeats`
  rounds, so every one sees the same background load on a shared machine; compare medians or the
  per-round ratios."""
  for fn in fns.values():
    for _ in range(warmup):
      fn()
  times = {name: [] for name in fns}
  for _ in range(repeats):
    for name, fn in fns.items():
      start = time.perf_counter()
      fn()
      times[name].append(time.perf_counter() - start)
  return times


def measured_peak_flops(n: int = 2048, dtype="float32") -> float:
  """FLOP/s of a large jitted matmul: the compute peak we compare model FLOPs against."""
  import jax
  import jax.numpy as jnp

  a = jnp.ones((n, n), dtype)
  f = jax.jit(lambda x: x @ x)
  seconds = timeit(lambda: f(a).block_until_ready(), repeats=5)
  return 2 * n**3 / seconds


def torch_llama(cfg, seed: int = 0):
  """A `transformers` Llama with our ModelConfig's architecture and random weights."""
  import torch
  import transformers as tf

  torch.manual_seed(seed)
  hf = tf.LlamaConfig(vocab_size=cfg.vocab_size, hidden_size=cfg.embed_dim, intermediate_size=cfg.mlp_dim,
                      num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads,
                      num_key_value_heads=cfg.num_kv_heads, head_dim=cfg.head_dim,
                      max_position_embeddings=cfg.max_positions, tie_word_embeddings=cfg.tie_embeddings)
  return tf.AutoModelForCausalLM.from_config(hf, dtype=torch.float32).eval()


def torch_to_ours(torch_model, directory):
  """Saves the torch model and loads it into our model: the same weights on both sides."""
  from sandbox_jax.model import load_hf_checkpoint

  torch_model.save_pretrained(directory, safe_serialization=True)
  return load_hf_checkpoint(directory)


if __name__ == "__main__":  # python -m benchmarks.common: this host's record as JSON
  print(json.dumps(host_info(), indent=2))
