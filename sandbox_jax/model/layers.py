"""Pure functions for the decoder's pieces: norms, RoPE, attention, MLPs.

Tensor names carry their shapes: B batch, L query length, S key length (cache slots), D embed,
N query heads, K kv heads, G = N // K query heads per kv head, H head dim, F mlp dim, V vocab.
"""

import functools
import math

import jax
import jax.numpy as jnp

_MASKED = -1e30  # finite, so a fully masked (padding) row gives a uniform softmax, not NaN


def rms_norm(x_BxLxD, scale_D, eps):
  x = x_BxLxD.astype(jnp.float32)
  y = x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + eps)
  return (y * scale_D.astype(jnp.float32)).astype(x_BxLxD.dtype)


def layer_norm(x_BxLxD, scale_D, bias_D, eps):
  x = x_BxLxD.astype(jnp.float32)
  mean = jnp.mean(x, axis=-1, keepdims=True)
  var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
  y = (x - mean) * jax.lax.rsqrt(var + eps)
  return (y * scale_D.astype(jnp.float32) + bias_D.astype(jnp.float32)).astype(x_BxLxD.dtype)


def rope_inverse_frequencies(head_dim: int, theta: float, scaling: dict | None) -> jax.Array:
  """RoPE inverse frequencies, with Llama-3 frequency-dependent scaling when configured."""
  inv_freq_H2 = 1.0 / (theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim))
  if not scaling:
    return inv_freq_H2
  factor = scaling["factor"]
  low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
  old_context = scaling["original_max_position_embeddings"]
  wavelen = 2 * math.pi / inv_freq_H2
  scaled = jnp.where(wavelen > old_context / low, inv_freq_H2 / factor, inv_freq_H2)
  smooth = (old_context / wavelen - low) / (high - low)
  smoothed = (1 - smooth) * scaled / factor + smooth * scaled
  is_medium = (wavelen >= old_context / high) & (wavelen <= old_context / low)
  return jnp.where(is_medium, smoothed, scaled)


def apply_rope(x_BxLxNxH, positions_BxL, inv_freq_H2):
  """Rotate-half RoPE (the Hugging Face layout: the two halves of each head are the pair)."""
  angles_BxLxH2 = positions_BxL.astype(jnp.float32)[..., None] * inv_freq_H2
  cos = jnp.cos(angles_BxLxH2)[:, :, None, :]
  sin = jnp.sin(angles_BxLxH2)[:, :, None, :]
  x = x_BxLxNxH.astype(jnp.float32)
  x1, x2 = jnp.split(x, 2, axis=-1)
  rotated = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return rotated.astype(x_BxLxNxH.dtype)


def attention(q_BxLxNxH, segments):
  """Grouped-query attention over one or more key/value segments, with one joint softmax (fp32).

  `segments` is a list of (k_BxKxSxH, v_BxKxSxH, mask_BxLxS). Decoding passes the KV cache (read
  only) and the new tokens' keys as two segments, so the cache is never rewritten per layer. Keys
  and values are head-major (the cache's layout), so the dots need no transpose of the key axis.
  """
  b, l, n, h = q_BxLxNxH.shape
  kv = segments[0][0].shape[1]
  q_BxKxGxLxH = q_BxLxNxH.reshape(b, l, kv, n // kv, h).transpose(0, 2, 3, 1, 4)
  if len(segments) == 1:  # training, scoring, prefill: one additive mask and the library softmax
    (k_BxKxSxH, v_BxKxSxH, mask_BxLxS), = segments
    bias_Bx1x1xLxS = jnp.where(mask_BxLxS, 0.0, _MASKED)[:, None, None]
    s_BxKxGxLxS = jnp.einsum("bkglh,bksh->bkgls", q_BxKxGxLxH * (1 / math.sqrt(h)), k_BxKxSxH,
                             preferred_element_type=jnp.float32) + bias_Bx1x1xLxS
    weights = jax.nn.softmax(s_BxKxGxLxS, axis=-1).astype(v_BxKxSxH.dtype)
    out_BxKxGxLxH = jnp.einsum("bkgls,bksh->bkglh", weights, v_BxKxSxH)
    return out_BxKxGxLxH.transpose(0, 3, 1, 2, 4).reshape(b, l, n, h)
  scores = []
  for k_BxKxSxH, _, mask_BxLxS in segments:
    s_BxKxGxLxS = jnp.einsum("bkglh,bksh->bkgls", q_BxKxGxLxH, k_BxKxSxH,
                             preferred_element_type=jnp.float32) / math.sqrt(h)
    scores.append(jnp.where(mask_BxLxS[:, None, None], s_BxKxGxLxS, _MASKED))
  max_BxKxGxLx1 = functools.reduce(jnp.maximum, [jnp.max(s, axis=-1, keepdims=True) for s in scores])
  weights = [jnp.exp(s - max_BxKxGxLx1) for s in scores]
  denom_BxKxGxLx1 = sum(jnp.sum(w, axis=-1, keepdims=True) for w in weights)
  out_BxKxGxLxH = sum(jnp.einsum("bkgls,bksh->bkglh", (w / denom_BxKxGxLx1).astype(v.dtype), v)
                      for w, (_, v, _) in zip(weights, segments))
  return out_BxKxGxLxH.transpose(0, 3, 1, 2, 4).reshape(b, l, n, h)


def causal_attention(q_BxLxNxH, k_BxKxLxH, v_BxKxLxH, mask_BxLxL, blocks: int = 4):
  """`attention` of L tokens to themselves under a causal mask (query i never sees key j > i).

  The queries run in `blocks` blocks, block i attending only to the keys up to its own last query:
  the score blocks above the diagonal, masked anyway, are never computed (4 blocks: 10 of the 16
  blocks, 37.5% less attention work; benchmarks/RESULTS.md, "Training step"). Every row with at least one
  visible key gets exactly the same softmax. A row that sees no key at all (a left-padded prompt's
  padding) averages the values of its block's keys instead of all keys; such rows are padding and
  nothing reads them.
  """
  l = q_BxLxNxH.shape[1]
  if blocks <= 1 or l % blocks:
    return attention(q_BxLxNxH, [(k_BxKxLxH, v_BxKxLxH, mask_BxLxL)])
  size = l // blocks
  outs = []
  for i in range(blocks):
    rows, keys = slice(i * size, (i + 1) * size), slice(0, (i + 1) * size)
    outs.append(attention(q_BxLxNxH[:, rows], [(k_BxKxLxH[:, :, keys], v_BxKxLxH[:, :, keys],
                                                 mask_BxLxL[:, rows, keys])]))
  return jnp.concatenate(outs, axis=1)


def project(x, w, contract: int = 1):
  """x's last `contract` axes times w's first `contract` axes, as one 2-D matmul.

  (B, L, D) · (D, N, H) → (B, L, N, H) with `contract=1`; (B, L, N, H) · (N, H, D) → (B, L, D) with 2.
  Flattening to (B·L, D) · (D, N·H) is the same product, but XLA's CPU backend runs the 2-D form
  much faster than the equivalent multi-axis einsum — 1.7× for the forward of a SwiGLU MLP, 1.6×
  with its gradient (benchmarks/RESULTS.md, "Training step") — and the reshapes are free.
  """
  lead, inner = x.shape[:x.ndim - contract], x.shape[x.ndim - contract:]
  k = math.prod(inner)
  y = x.reshape(-1, k) @ w.reshape(k, -1)
  return y.reshape(*lead, *w.shape[contract:])


def swiglu(x_BxLxD, gate_DxF, up_DxF, down_FxD, biases=None):
  gate = project(x_BxLxD, gate_DxF)
  up = project(x_BxLxD, up_DxF)
  if biases is not None:
    gate, up = gate + biases["gate_bias"], up + biases["up_bias"]
  out = project(jax.nn.silu(gate) * up, down_FxD)
  return out if biases is None else out + biases["down_bias"]


def gelu_mlp(x_BxLxD, up_DxF, up_bias_F, down_FxD, down_bias_D):
  hidden = jax.nn.gelu(project(x_BxLxD, up_DxF) + up_bias_F, approximate=True)
  return project(hidden, down_FxD) + down_bias_D
