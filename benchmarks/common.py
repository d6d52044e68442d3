"""Shared benchmark helpers: timing, the machine's measured matmul peak, tiny HF models."""

import os
import platform
import time

import numpy as np


def machine() -> str:
  import jax

  return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"jax {jax.__version__} on {jax.devices()[0].platform}")


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
