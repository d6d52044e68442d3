"""The decoder LM: a Flax NNX module whose layers are stacked arrays run with `lax.scan`.

One forward serves training (no cache), prefill (writes the cache) and one-token decode. Every
parameter carries logical axis names; `parallel.logical_shardings` turns them into shardings.
Parameters are stacked over layers (leading `layers` axis) so compile time does not grow with
depth and the HF importer can place each layer's tensor straight into its shard.
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.sharding import Mesh

from sandbox_jax.model import layers as L
from sandbox_jax.model.config import ModelConfig
from sandbox_jax.model.kv_cache import KVCache
from sandbox_jax.parallel.rules import DEFAULT_RULES, Rules
from sandbox_jax.parallel.sharding import constrain

_INIT_STD = 0.02
_REMAT = {
    "full": jax.checkpoint_policies.nothing_saveable,
    "dots": jax.checkpoint_policies.checkpoint_dots,
    "dots_no_batch": jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims,
}


@dataclasses.dataclass(frozen=True)
class ParamSpec:
  shape: tuple[int, ...]
  axes: tuple[str | None, ...]
  init: str  # 'normal' | 'ones' | 'zeros'


def layer_param_specs(cfg: ModelConfig) -> dict[str, ParamSpec]:
  """Per-layer parameters (without the leading `layers` axis), by name."""
  d, f, n, k, h = cfg.embed_dim, cfg.mlp_dim, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
  specs = {
      "attn_norm": ParamSpec((d,), ("embed",), "ones"),
      "q": ParamSpec((d, n, h), ("embed", "heads", "head_dim"), "normal"),
      "k": ParamSpec((d, k, h), ("embed", "kv_heads", "head_dim"), "normal"),
      "v": ParamSpec((d, k, h), ("embed", "kv_heads", "head_dim"), "normal"),
      "o": ParamSpec((n, h, d), ("heads", "head_dim", "embed"), "normal"),
      "mlp_norm": ParamSpec((d,), ("embed",), "ones"),
      "up": ParamSpec((d, f), ("embed", "mlp"), "normal"),
      "down": ParamSpec((f, d), ("mlp", "embed"), "normal"),
  }
  if cfg.family == "llama":
    specs["gate"] = ParamSpec((d, f), ("embed", "mlp"), "normal")
  else:
    specs["attn_norm_bias"] = ParamSpec((d,), ("embed",), "zeros")
    specs["mlp_norm_bias"] = ParamSpec((d,), ("embed",), "zeros")
  if cfg.qkv_bias:
    specs["q_bias"] = ParamSpec((n, h), ("heads", "head_dim"), "zeros")
    specs["k_bias"] = ParamSpec((k, h), ("kv_heads", "head_dim"), "zeros")
    specs["v_bias"] = ParamSpec((k, h), ("kv_heads", "head_dim"), "zeros")
  if cfg.out_bias:
    specs["o_bias"] = ParamSpec((d,), ("embed",), "zeros")
  if cfg.mlp_bias:
    if cfg.family == "llama":
      specs["gate_bias"] = ParamSpec((f,), ("mlp",), "zeros")
    specs["up_bias"] = ParamSpec((f,), ("mlp",), "zeros")
    specs["down_bias"] = ParamSpec((d,), ("embed",), "zeros")
  return specs


def top_param_specs(cfg: ModelConfig) -> dict[str, ParamSpec]:
  """Parameters outside the layer stack, by name."""
  specs = {
      "embed": ParamSpec((cfg.vocab_size, cfg.embed_dim), ("vocab", "embed"), "normal"),
      "final_norm": ParamSpec((cfg.embed_dim,), ("embed",), "ones"),
  }
  if cfg.family == "gpt2":
    specs["pos_embed"] = ParamSpec((cfg.max_positions, cfg.embed_dim), (None, "embed"), "normal")
    specs["final_norm_bias"] = ParamSpec((cfg.embed_dim,), ("embed",), "zeros")
  if not cfg.tie_embeddings:
    specs["lm_head"] = ParamSpec((cfg.embed_dim, cfg.vocab_size), ("embed", "vocab"), "normal")
  return specs


def _make_param(spec: ParamSpec, key, dtype, leading: tuple[int, ...] = (), leading_axes=()) -> nnx.Param:
  shape = leading + spec.shape
  if spec.init == "normal":
    value = _INIT_STD * jax.random.normal(key, shape, jnp.float32)
  elif spec.init == "ones":
    value = jnp.ones(shape, jnp.float32)
  else:
    value = jnp.zeros(shape, jnp.float32)
  return nnx.Param(value.astype(dtype), out_sharding=leading_axes + spec.axes, eager_sharding=False)


class DecoderLayers(nnx.Module):
  """All decoder layers' parameters, stacked on a leading `layers` axis."""

  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    for name, spec in layer_param_specs(cfg).items():
      setattr(self, name, _make_param(spec, rngs.params(), cfg.weight_dtype, (cfg.num_layers,), ("layers",)))


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class ModelOutput:
  logits_BxLxV: jax.Array | None
  hidden_BxLxD: jax.Array
  cache: KVCache | None
  # Every layer's keys/values of these tokens (L×B×K×len×H): a prefill builds its cache from them.
  new_kv: tuple[jax.Array, jax.Array] | None = None


class Transformer(nnx.Module):
  """Decoder-only LM (Llama family or GPT-2), see module docstring."""

  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs, mesh: Mesh | None = None,
               rules: Rules = DEFAULT_RULES):
    self.cfg = cfg
    self.mesh = mesh
    self.rules = tuple(rules)
    for name, spec in top_param_specs(cfg).items():
      setattr(self, name, _make_param(spec, rngs.params(), cfg.weight_dtype))
    self.layers = DecoderLayers(cfg, rngs=rngs)

  def _constrain(self, x, axes):
    return constrain(x, axes, self.mesh, self.rules)

  def __call__(self, tokens_BxL, positions_BxL=None, valid_BxL=None, cache: KVCache | None = None,
               *, compute_logits: bool = True) -> ModelOutput:
    """Runs the decoder.

    Args:
      tokens_BxL: token ids.
      positions_BxL: position of each token in its row (default: count of earlier valid tokens,
        also counting the valid cache slots; so left padding does not shift positions).
      valid_BxL: which tokens are real (default all); invalid ones are never attended to.
      cache: if given, the tokens are written at slots [cache.index, cache.index + L) and attend
        to every earlier valid slot; the updated cache is returned.
    """
    cfg = self.cfg
    dtype = cfg.compute_dtype
    b, l = tokens_BxL.shape
    valid_BxL = jnp.ones((b, l), bool) if valid_BxL is None else valid_BxL.astype(bool)
    if positions_BxL is None:
      before_B = 0 if cache is None else jnp.sum(cache.valid_BxS, axis=1)
      positions_BxL = jnp.maximum(jnp.cumsum(valid_BxL, axis=1) - 1, 0) + jnp.reshape(before_B, (-1, 1))

    x_BxLxD = jnp.take(self.embed.get_value(), tokens_BxL, axis=0).astype(dtype)
    if cfg.family == "gpt2":
      x_BxLxD = x_BxLxD + jnp.take(self.pos_embed.get_value(), positions_BxL, axis=0).astype(dtype)
    x_BxLxD = self._constrain(x_BxLxD, ("batch", "length", "act_embed"))

    causal_LxL = jnp.arange(l)[:, None] >= jnp.arange(l)[None, :]
    new_mask_BxLxL = causal_LxL[None] & valid_BxL[:, None, :]
    if cache is not None:  # every valid cache slot precedes the new tokens
      cache_mask_BxLxS = jnp.broadcast_to(cache.valid_BxS[:, None, :], (b, l, cache.length))

    inv_freq_H2 = L.rope_inverse_frequencies(cfg.head_dim, cfg.rope_theta, cfg.rope_scaling_dict)
    stacked = {name: var.get_value() for name, var in vars(self.layers).items() if isinstance(var, nnx.Param)}

    def block(x, p, attend_to):
      p = jax.tree.map(lambda w: w.astype(dtype), p)
      h = self._norm(x, p, "attn_norm")
      q, k, v = (L.project(h, p[name]) for name in ("q", "k", "v"))
      if cfg.qkv_bias:
        q, k, v = q + p["q_bias"], k + p["k_bias"], v + p["v_bias"]
      if cfg.family == "llama":
        q = L.apply_rope(q, positions_BxL, inv_freq_H2)
        k = L.apply_rope(k, positions_BxL, inv_freq_H2)
      q = self._constrain(q, ("batch", "length", "heads", "head_dim"))
      k_BxKxLxH, v_BxKxLxH = k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)
      attn = remat_attention(q, attend_to(k_BxKxLxH, v_BxKxLxH))
      out = L.project(attn, p["o"], contract=2)
      x = x + (out + p["o_bias"] if cfg.out_bias else out)
      h = self._norm(x, p, "mlp_norm")
      if cfg.family == "llama":
        biases = {n: p[n] for n in ("gate_bias", "up_bias", "down_bias")} if cfg.mlp_bias else None
        mlp = L.swiglu(h, p["gate"], p["up"], p["down"], biases)
      else:
        mlp = L.gelu_mlp(h, p["up"], p["up_bias"], p["down"], p["down_bias"])
      return self._constrain(x + mlp, ("batch", "length", "act_embed")), (k_BxKxLxH, v_BxKxLxH)

    if cache is None:
      # The mask is causal here, so attention skips the blocks above the diagonal (causal_attention).
      # Under autodiff the scan would stack every layer's B×N×L×L attention probabilities as
      # residuals (zero-filled, then copied); recomputing them in the backward pass (one more QKᵀ and
      # softmax per layer) saves only q, k, v instead: the train step's temp memory fell 27%
      # (benchmarks/RESULTS.md, "Training step").
      remat_attention = jax.checkpoint(lambda q, segments: L.causal_attention(q, *segments[0]))

      def body(x, p):
        return block(x, p, lambda k, v: [(k, v, new_mask_BxLxL)])
      if cfg.remat_policy != "none":
        body = jax.checkpoint(body, policy=_REMAT[cfg.remat_policy], prevent_cse=False)
      x_BxLxD, (k_new, v_new) = jax.lax.scan(body, x_BxLxD, stacked, unroll=cfg.scan_unroll)
      new_cache = None
    else:
      remat_attention = L.attention

      def body(x, layer):
        p, k_cache_BxKxSxH, v_cache_BxKxSxH = layer
        cached = (k_cache_BxKxSxH.astype(dtype), v_cache_BxKxSxH.astype(dtype), cache_mask_BxLxS)
        return block(x, p, lambda k, v: [cached, (k, v, new_mask_BxLxL)])

      layers = (stacked, cache.k_LxBxKxSxH, cache.v_LxBxKxSxH)
      x_BxLxD, (k_new, v_new) = jax.lax.scan(body, x_BxLxD, layers, unroll=cfg.scan_unroll)
      at = (0, 0, 0, cache.index, 0)  # one in-place write of every layer's new keys and values
      new_cache = KVCache(
          jax.lax.dynamic_update_slice(cache.k_LxBxKxSxH, k_new.astype(cache.k_LxBxKxSxH.dtype), at),
          jax.lax.dynamic_update_slice(cache.v_LxBxKxSxH, v_new.astype(cache.v_LxBxKxSxH.dtype), at),
          jax.lax.dynamic_update_slice(cache.valid_BxS, valid_BxL, (0, cache.index)),
          cache.index + l)

    hidden_BxLxD = self._final_norm(x_BxLxD)
    logits = self.logits(hidden_BxLxD) if compute_logits else None
    return ModelOutput(logits, hidden_BxLxD, new_cache, (k_new, v_new))

  def logits(self, hidden_BxLxD):
    dtype = self.cfg.compute_dtype
    if self.cfg.tie_embeddings:
      logits = L.project(hidden_BxLxD, self.embed.get_value().astype(dtype).T)
    else:
      logits = L.project(hidden_BxLxD, self.lm_head.get_value().astype(dtype))
    return self._constrain(logits.astype(jnp.float32), ("batch", "length", "vocab"))

  def _norm(self, x, p: dict[str, Any], name: str):
    if self.cfg.family == "llama":
      return L.rms_norm(x, p[name], self.cfg.norm_eps)
    return L.layer_norm(x, p[name], p[name + "_bias"], self.cfg.norm_eps)

  def _final_norm(self, x):
    p = {"final_norm": self.final_norm.get_value()}
    if self.cfg.family == "gpt2":
      p["final_norm_bias"] = self.final_norm_bias.get_value()
    return self._norm(x, jax.tree.map(lambda w: w.astype(self.cfg.compute_dtype), p), "final_norm")
