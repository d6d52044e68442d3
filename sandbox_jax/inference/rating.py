"""Ratings read from the model (DESIGN.md §6.4), with the reason generated after the chosen rating.

Used by the society round (peer and observer ratings) inside its compiled program.

One prefill of the rating prompt gives the next-token distribution; its softmax over the seven
candidate tokens "1".."7" is the rating distribution (expected value and argmax are kept). The
chosen digit and ` ### Reason:` are then fed through the same KV cache and the reason is decoded.
No text is parsed, so there are no parse failures.
"""

import dataclasses

import jax
import jax.numpy as jnp

from sandbox_jax.inference.chunking import map_row_chunks
from sandbox_jax.inference.generate import Generation, decode, prefill
from sandbox_jax.inference.sampling import SamplingConfig
from sandbox_jax.model.kv_cache import KVCache
from sandbox_jax.model.transformer import Transformer


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class Rating:
  distribution_Rx7: jax.Array
  expected_R: jax.Array      # sum_i i * p(i), in [1, 7]
  argmax_R: jax.Array        # 1..7
  reason: Generation | None  # None when reasons are switched off (reason_tokens=0)


def rate(model: Transformer, prompt_RxP, valid_RxP, candidate_ids_7, reason_prefix_ids, keys_R,
         temperature_R, *, reason_tokens: int, eos_id: int, pad_id: int,
         sampling: SamplingConfig = SamplingConfig(), chunk_rows: int = 0) -> Rating:
  """`chunk_rows` > 0 rates this many rows at a time, one chunk after another (`map_row_chunks`);
  the ratings and reasons equal those of one pass."""
  if chunk_rows > 0:
    one_chunk = lambda prompt, valid, keys, temperature: rate(
        model, prompt, valid, candidate_ids_7, reason_prefix_ids, keys, temperature, reason_tokens=reason_tokens,
        eos_id=eos_id, pad_id=pad_id, sampling=sampling)
    return map_row_chunks(one_chunk, chunk_rows, prompt_RxP, valid_RxP, keys_R, temperature_R)
  rows, p = prompt_RxP.shape
  logits_RxV, k_LxRxKxPxH, v_LxRxKxPxH = prefill(model, prompt_RxP, valid_RxP)
  distribution = jax.nn.softmax(logits_RxV[:, candidate_ids_7], axis=-1)
  scale = jnp.arange(1, 8, dtype=jnp.float32)
  expected = distribution @ scale
  choice = jnp.argmax(distribution, axis=-1)
  if reason_tokens <= 0:
    return Rating(distribution, expected, (choice + 1).astype(jnp.int32), None)
  forced_RxF = jnp.concatenate([candidate_ids_7[choice][:, None],
                                jnp.broadcast_to(reason_prefix_ids, (rows, reason_prefix_ids.shape[0]))], axis=1)
  cache = KVCache.from_prefill(k_LxRxKxPxH, v_LxRxKxPxH, valid_RxP, p + forced_RxF.shape[1] + reason_tokens)
  forced = model(forced_RxF, cache=cache)
  reason = decode(model, forced.cache, forced.logits_BxLxV[:, -1], keys_R, temperature_R,
                  max_new_tokens=reason_tokens, eos_id=eos_id, pad_id=pad_id, sampling=sampling)
  return Rating(distribution, expected, (choice + 1).astype(jnp.int32), reason)
