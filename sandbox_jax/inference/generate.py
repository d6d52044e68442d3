"""Batched generation inside jit: one prefill over left-padded prompts, then a `lax.while_loop`
decode over a preallocated KV cache, stopping per row on EOS (any of several stop ids: `eos_id` is an
int or a tuple of ints, e.g. a chat model's EOS and end-of-turn tokens) or the length limit. `chunk_rows`
runs the whole generation (prefill and decode) a chunk of rows at a time (`chunking.py`).

`generate_tokens` is a pure function of arrays, so it can be called inside a larger jitted program
(the society round does).
"""

import dataclasses

import jax
import jax.numpy as jnp

from sandbox_jax.inference.chunking import map_row_chunks
from sandbox_jax.inference.sampling import SamplingConfig, sample_tokens
from sandbox_jax.model.kv_cache import KVCache
from sandbox_jax.model.transformer import Transformer


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class Generation:
  tokens_BxT: jax.Array     # generated tokens, pad_id after the end (EOS itself is not included)
  lengths_B: jax.Array      # number of generated tokens before EOS / the limit
  logprobs_BxT: jax.Array   # log-prob of each generated token (0 after the end)
  ended_with_eos_B: jax.Array


def generate_tokens(model: Transformer, prompt_BxP, prompt_valid_BxP, row_keys_B, temperature_B, *,
                    max_new_tokens: int, eos_id: int | tuple[int, ...], pad_id: int,
                    sampling: SamplingConfig = SamplingConfig(), stop_at=None, chunk_rows: int = 0) -> Generation:
  """Generates up to `max_new_tokens` (static: the output width) for every row.

  Args:
    prompt_BxP: left-padded prompts (every row's last column is a real token).
    prompt_valid_BxP: which prompt tokens are real.
    row_keys_B: one PRNG key per row (sampling is per row; greedy rows ignore it).
    temperature_B: per-row temperature; 0 means greedy.
    stop_at: optional traced int scalar <= max_new_tokens: a shorter limit without recompiling.
    chunk_rows: > 0 generates for this many rows at a time, one chunk after another
      (`map_row_chunks`); the generations agree with one pass within float tolerance (DESIGN.md §13).
  """
  if chunk_rows > 0:
    one_chunk = lambda *rows: generate_tokens(model, *rows, max_new_tokens=max_new_tokens, eos_id=eos_id,
                                              pad_id=pad_id, sampling=sampling, stop_at=stop_at)
    return map_row_chunks(one_chunk, chunk_rows, prompt_BxP, prompt_valid_BxP, row_keys_B, temperature_B)
  p = prompt_BxP.shape[1]
  logits_BxV, k_LxBxKxPxH, v_LxBxKxPxH = prefill(model, prompt_BxP, prompt_valid_BxP)
  cache = KVCache.from_prefill(k_LxBxKxPxH, v_LxBxKxPxH, prompt_valid_BxP, p + max_new_tokens)
  return decode(model, cache, logits_BxV, row_keys_B, temperature_B, max_new_tokens=max_new_tokens,
                eos_id=eos_id, pad_id=pad_id, sampling=sampling, stop_at=stop_at)


def prefill(model: Transformer, prompt_BxP, valid_BxP):
  """(last-token logits_BxV, keys, values L×B×K×P×H) of left-padded prompts."""
  out = model(prompt_BxP, valid_BxL=valid_BxP, compute_logits=False)
  return (model.logits(out.hidden_BxLxD[:, -1:])[:, 0], *out.new_kv)


def decode(model: Transformer, cache: KVCache, logits_BxV, row_keys_B, temperature_B, *, max_new_tokens: int,
           eos_id: int | tuple[int, ...], pad_id: int, sampling: SamplingConfig = SamplingConfig(),
           stop_at=None) -> Generation:
  """The decode loop from a filled cache and the logits of each row's last token.

  The cache needs `max_new_tokens` free slots after `cache.index`.
  """
  b = logits_BxV.shape[0]
  stop_ids = jnp.asarray(eos_id, jnp.int32).reshape(-1)
  limit = max_new_tokens if stop_at is None else jnp.minimum(stop_at, max_new_tokens)

  def cond(state):
    step, done_B = state[0], state[5]
    return (step < limit) & ~jnp.all(done_B)

  def body(state):
    step, cache, logits_BxV, tokens_BxT, logprobs_BxT, done_B, eos_B, lengths_B = state
    token_B, logprob_B = sample_tokens(logits_BxV, row_keys_B, step, temperature_B, sampling)
    hit_eos_B = jnp.isin(token_B, stop_ids) & ~done_B
    emit_B = ~done_B & ~hit_eos_B
    tokens_BxT = tokens_BxT.at[:, step].set(jnp.where(emit_B, token_B, pad_id))
    logprobs_BxT = logprobs_BxT.at[:, step].set(jnp.where(emit_B, logprob_B, 0.0))
    out = model(jnp.where(emit_B, token_B, pad_id)[:, None], valid_BxL=emit_B[:, None], cache=cache)
    return (step + 1, out.cache, out.logits_BxLxV[:, 0], tokens_BxT, logprobs_BxT, done_B | hit_eos_B,
            eos_B | hit_eos_B, lengths_B + emit_B)

  zeros_B = jnp.zeros((b,), bool)
  state = (jnp.zeros((), jnp.int32), cache, logits_BxV,
           jnp.full((b, max_new_tokens), pad_id, jnp.int32), jnp.zeros((b, max_new_tokens), jnp.float32),
           zeros_B, zeros_B, jnp.zeros((b,), jnp.int32))
  state = jax.lax.while_loop(cond, body, state)
  return Generation(tokens_BxT=state[3], lengths_B=state[7], logprobs_BxT=state[4], ended_with_eos_B=state[6])
