"""Cached decode, token by token, equals the full forward pass; padding does not leak."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sandbox_jax.model import KVCache, ModelConfig, create_model

CONFIGS = {
    "llama": ModelConfig(),
    "gpt2": ModelConfig(family="gpt2", num_kv_heads=4, qkv_bias=True, out_bias=True, mlp_bias=True,
                        tie_embeddings=True),
    "qwen_like": ModelConfig(qkv_bias=True, num_kv_heads=1),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_token_by_token_decode_equals_full_forward(name):
  cfg = CONFIGS[name]
  model = create_model(cfg, seed=1)
  tokens = jnp.asarray(np.random.default_rng(0).integers(0, cfg.vocab_size, (3, 12)))
  full = model(tokens).logits_BxLxV
  step = jax.jit(lambda m, t, c: m(t, cache=c))
  out = step(model, tokens[:, :4], KVCache.create(cfg, 3, 16))
  pieces, cache = [out.logits_BxLxV], out.cache
  for i in range(4, 12):
    out = step(model, tokens[:, i:i + 1], cache)
    pieces.append(out.logits_BxLxV)
    cache = out.cache
  assert int(cache.index) == 12
  np.testing.assert_allclose(np.concatenate(pieces, axis=1), full, atol=1e-5, rtol=0)


def test_left_padding_does_not_change_real_logits():
  cfg = CONFIGS["llama"]
  model = create_model(cfg, seed=2)
  row = jnp.asarray(np.random.default_rng(1).integers(0, cfg.vocab_size, (1, 7)))
  alone = model(row).logits_BxLxV[0]
  padded = jnp.concatenate([jnp.zeros((1, 5), row.dtype), row], axis=1)
  valid = jnp.arange(12)[None] >= 5
  out = model(padded, valid_BxL=valid).logits_BxLxV[0, 5:]
  np.testing.assert_allclose(out, alone, atol=1e-5, rtol=0)


def test_remat_policies_give_the_same_loss_gradient():
  base = ModelConfig()
  tokens = jnp.asarray(np.random.default_rng(3).integers(0, base.vocab_size, (2, 9)))

  def grad_for(policy):
    model = create_model(base.replace(remat_policy=policy), seed=0)
    loss = lambda m: jnp.mean(jax.nn.logsumexp(m(tokens).logits_BxLxV, -1))
    return jax.tree.leaves(jax.grad(loss)(model))

  for a, b in zip(grad_for("none"), grad_for("full")):
    np.testing.assert_allclose(a, b, atol=1e-6, rtol=1e-5)


def test_cache_built_from_a_prefill_continues_like_the_full_forward():
  cfg = CONFIGS["llama"]
  model = create_model(cfg, seed=4)
  tokens = jnp.asarray(np.random.default_rng(5).integers(0, cfg.vocab_size, (2, 10)))
  valid = jnp.arange(10)[None] >= jnp.asarray([[0], [3]])
  full = model(tokens, valid_BxL=valid).logits_BxLxV
  prefill = model(tokens[:, :7], valid_BxL=valid[:, :7])
  cache = KVCache.from_prefill(*prefill.new_kv, valid[:, :7], 12)
  out = model(tokens[:, 7:], valid_BxL=valid[:, 7:], cache=cache)
  np.testing.assert_allclose(out.logits_BxLxV, full[:, 7:], atol=1e-5, rtol=0)
  assert int(out.cache.index) == 10


@pytest.mark.parametrize("blocks", [2, 4, 3])  # 3 does not divide 16: one pass
def test_causal_attention_in_query_blocks_equals_one_pass(blocks):
  """Skipping the masked blocks above the diagonal changes no row that sees at least one key
  (left padding leaves rows that see none; right padding leaves padded keys)."""
  from sandbox_jax.model import layers as L

  rng = np.random.default_rng(blocks)
  b, length, n, k, h = 3, 16, 4, 2, 8
  q = jnp.asarray(rng.standard_normal((b, length, n, h)), jnp.float32)
  keys, values = (jnp.asarray(rng.standard_normal((b, k, length, h)), jnp.float32) for _ in range(2))
  valid = np.ones((b, length), bool)
  valid[0, :5] = False   # left padding
  valid[1, 11:] = False  # right padding
  mask = np.tril(np.ones((length, length), bool))[None] & valid[:, None, :]
  full = L.attention(q, [(keys, values, jnp.asarray(mask))])
  blocked = L.causal_attention(q, keys, values, jnp.asarray(mask), blocks=blocks)
  sees_a_key = mask.any(axis=-1)
  np.testing.assert_allclose(np.asarray(blocked)[sees_a_key], np.asarray(full)[sees_a_key], atol=1e-6)
  assert not sees_a_key.all()  # the left-padded rows that see nothing are excluded, and only they
  assert sees_a_key[0].sum() == length - 5 and sees_a_key[1:].all()
