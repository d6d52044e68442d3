"""Roofline ceilings of an accelerator, and the model FLOPs and bytes the GPU suite divides by them.

Ceilings come, in this order, from the command line (`--peak-tflops`, `--hbm-tbps`), from the
datasheet table `CARDS` (matched on `jax.devices()[0].device_kind`), or, for a device the table does
not know (a CPU in `--smoke` mode), from the measured ceilings: a large jitted bf16 matmul and a
large in-place elementwise pass (bytes read + written). The measured ceilings are always recorded too, so a
card whose clocks or memory fall short of its datasheet shows it.

FLOP counts are model FLOPs of the matmuls (2 per multiply-add): 2 per non-embedding weight per
token, the LM head (V x D) only at the positions whose logits are computed, attention's QK^T and
AV over the causal (query, key) pairs only — T(T+1)/2 per row, what a causal model must compute —
and backward = 2 x forward. The embedding lookup counts nothing.

Decode bytes per step are the fewest a decode step must read from device memory: every weight
once (the tied embedding is the LM head; an untied input embedding is a B-row gather and not
counted) and the keys and values of every valid cache slot. Activations, logits and the cache
slots the program reads beyond the valid ones are not counted.
"""

import dataclasses


from benchmarks.common import timeit
from sandbox_jax.model import ModelConfig


@dataclasses.dataclass(frozen=True)
class Card:
  name: str
  bf16_flops: float       # dense bf16 tensor-core peak, FLOP/s (no sparsity)
  hbm_bytes_s: float      # device memory bandwidth, bytes/s


# Datasheet figures (NVIDIA H100/H200/A100 datasheets), matched on device_kind by `card_for`.
CARDS = {
    "h200": Card("NVIDIA H200 SXM", 989.4e12, 4.8e12),
    "h100-sxm": Card("NVIDIA H100 SXM 80GB", 989.4e12, 3.35e12),
    "a100-80gb-sxm": Card("NVIDIA A100 80GB SXM", 312e12, 2.039e12),
    "a100-80gb-pcie": Card("NVIDIA A100 80GB PCIe", 312e12, 1.935e12),
}


def card_for(device_kind: str) -> Card | None:
  """The table's card for a JAX device_kind ('NVIDIA H200', 'NVIDIA H100 80GB HBM3',
  'NVIDIA A100-SXM4-80GB', 'NVIDIA A100 80GB PCIe'); None for anything else (H200 NVL, H100 PCIe...)."""
  kind = device_kind.lower()
  if "h200" in kind and "nvl" not in kind:
    return CARDS["h200"]
  if "h100" in kind and ("hbm3" in kind or "sxm" in kind):
    return CARDS["h100-sxm"]
  if "a100" in kind and "80gb" in kind:
    return CARDS["a100-80gb-pcie" if "pcie" in kind else "a100-80gb-sxm"]
  return None


def measure_ceilings(matmul_n: int, copy_bytes: int, repeats: int = 10) -> dict:
  """{'bf16_flops', 'hbm_bytes_s'} measured here: an n^3 bf16 matmul of random data, and
  x <- 1 - x over `copy_bytes` of float32, in place (the buffer donated, so no call pays for a fresh
  allocation), counted as read + written."""
  import jax
  import jax.numpy as jnp

  a, b = (jax.random.normal(k, (matmul_n, matmul_n), jnp.bfloat16) for k in jax.random.split(jax.random.key(0)))
  matmul = jax.jit(lambda x, y: x @ y)
  t_mm = timeit(lambda: matmul(a, b).block_until_ready(), warmup=1, repeats=repeats)
  flip = jax.jit(lambda v: 1 - v, donate_argnums=0)
  holder = [jax.random.normal(jax.random.key(1), (copy_bytes // 4,), jnp.float32)]

  def copy():
    holder[0] = flip(holder[0]).block_until_ready()

  t_copy = timeit(copy, warmup=1, repeats=repeats)
  nbytes = int(holder[0].size * holder[0].dtype.itemsize)
  return {"bf16_flops": 2 * matmul_n**3 / t_mm, "hbm_bytes_s": 2 * nbytes / t_copy, "matmul_n": matmul_n,
          "copy_bytes": nbytes}


def resolve_ceilings(device_kind: str, measured: dict, peak_tflops: float | None = None,
                     hbm_tbps: float | None = None) -> dict:
  """The ceilings the fractions use, each with where it came from ('flag', 'table: <card>', 'measured')."""
  card = card_for(device_kind)
  table = f"table: {card.name}" if card else None
  flops, flops_src = ((peak_tflops * 1e12, "flag") if peak_tflops else
                      (card.bf16_flops, table) if card else (measured["bf16_flops"], "measured"))
  bandwidth, bw_src = ((hbm_tbps * 1e12, "flag") if hbm_tbps else
                       (card.hbm_bytes_s, table) if card else (measured["hbm_bytes_s"], "measured"))
  return {"device_kind": device_kind, "bf16_flops": flops, "bf16_flops_source": flops_src,
          "hbm_bytes_s": bandwidth, "hbm_bytes_s_source": bw_src, "measured": measured}


# -- model FLOPs and bytes ---------------------------------------------------------------------------
def head_params(cfg: ModelConfig) -> int:
  return cfg.vocab_size * cfg.embed_dim


def body_params(cfg: ModelConfig) -> int:
  """Parameters outside the embedding table(s) and LM head."""
  return cfg.num_params() - head_params(cfg) * (1 if cfg.tie_embeddings else 2)


def forward_flops(cfg: ModelConfig, rows: int, length: int, logit_positions: int) -> float:
  """One causal forward pass of `rows` rows of `length` tokens, logits at `logit_positions` per row."""
  attention = 4 * cfg.num_layers * cfg.num_heads * cfg.head_dim * length * (length + 1) / 2
  return rows * (2 * body_params(cfg) * length + attention + 2 * head_params(cfg) * logit_positions)


def train_flops(cfg: ModelConfig, rows: int, length: int) -> float:
  """Forward + backward (2 x forward) with logits at every position."""
  return 3 * forward_flops(cfg, rows, length, length)


def weight_bytes(cfg: ModelConfig, itemsize: int) -> int:
  """Weight bytes a decode step reads: all parameters but an untied input embedding."""
  return (cfg.num_params() - (0 if cfg.tie_embeddings else head_params(cfg))) * itemsize


def kv_bytes(cfg: ModelConfig, batch: int, context: float, itemsize: int) -> float:
  """Keys + values of `context` valid slots per row, every layer."""
  return 2 * cfg.num_layers * batch * cfg.num_kv_heads * context * cfg.head_dim * itemsize
