"""Ratings read from the model (DESIGN.md §6.4): the one rating implementation.

A rating is the model's next-token distribution after the rating prompt, restricted to the seven
candidate tokens "1".."7" (`RATING_SCALE`) and renormalised (`rating_from_logits`); the expected
rating and the argmax are kept. One prefill per prompt. No text is parsed, so there are no parse
failures.

  `rate`        inside jit (the society round's peer and observer ratings), with the reason decoded
                after the chosen digit and ` ### Reason:` through the same KV cache;
  `rate_texts`  on the host (evaluation, warm-up): prompts as text through an `InferenceEngine`'s
                `next_token_logits` (one prefill per prompt), then the same `rating_from_logits`.
"""

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from sandbox_jax.data.schemas import RATING_SCALE
from sandbox_jax.inference.chunking import map_row_chunks
from sandbox_jax.inference.generate import Generation, decode, prefill
from sandbox_jax.inference.sampling import SamplingConfig
from sandbox_jax.model.kv_cache import KVCache
from sandbox_jax.model.transformer import Transformer


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class Rating:
  distribution_RxS: jax.Array  # S = len(RATING_SCALE) = 7
  expected_R: jax.Array        # sum_i i * p(i), in [1, 7]
  argmax_R: jax.Array          # 1..7
  reason: Generation | None    # None when reasons are switched off (reason_tokens=0) or on the host


def rating_from_logits(candidate_logits_RxS) -> Rating:
  """The rating of each row from its next-token logits at the candidates' ids (softmax over them)."""
  distribution_RxS = jax.nn.softmax(jnp.asarray(candidate_logits_RxS, jnp.float32), axis=-1)
  scale_S = jnp.arange(1, len(RATING_SCALE) + 1, dtype=jnp.float32)
  choice_R = jnp.argmax(distribution_RxS, axis=-1)
  return Rating(distribution_RxS, distribution_RxS @ scale_S, (choice_R + 1).astype(jnp.int32), None)


def candidate_token_ids(tokenizer, candidates: Sequence[str] = RATING_SCALE, what: str = "rating candidates"):
  """The single token id of each candidate; a rating is read from one next-token distribution."""
  ids = []
  for c in candidates:
    encoded = tokenizer.encode(c)
    if len(encoded) != 1:
      raise ValueError(f"{what}: {c!r} is {len(encoded)} tokens for tokenizer {tokenizer.name}; ratings are "
                       f"read from one next-token distribution")
    ids.append(encoded[0])
  return np.asarray(ids, np.int32)


def rate(model: Transformer, prompt_RxP, valid_RxP, candidate_ids_S, reason_prefix_ids, keys_R,
         temperature_R, *, reason_tokens: int, eos_id: int | tuple[int, ...], pad_id: int,
         sampling: SamplingConfig = SamplingConfig(), chunk_rows: int = 0) -> Rating:
  """Ratings (and reasons) of left-padded rating prompts, inside jit.

  `chunk_rows` > 0 rates this many rows at a time, one chunk after another (`map_row_chunks`);
  the results agree with one pass within float tolerance (DESIGN.md §13)."""
  if chunk_rows > 0:
    one_chunk = lambda prompt, valid, keys, temperature: rate(
        model, prompt, valid, candidate_ids_S, reason_prefix_ids, keys, temperature, reason_tokens=reason_tokens,
        eos_id=eos_id, pad_id=pad_id, sampling=sampling)
    return map_row_chunks(one_chunk, chunk_rows, prompt_RxP, valid_RxP, keys_R, temperature_R)
  rows, p = prompt_RxP.shape
  logits_RxV, k_LxRxKxPxH, v_LxRxKxPxH = prefill(model, prompt_RxP, valid_RxP)
  rating = rating_from_logits(logits_RxV[:, candidate_ids_S])
  if reason_tokens <= 0:
    return rating
  forced_RxF = jnp.concatenate([candidate_ids_S[rating.argmax_R - 1][:, None],
                                jnp.broadcast_to(reason_prefix_ids, (rows, reason_prefix_ids.shape[0]))], axis=1)
  cache = KVCache.from_prefill(k_LxRxKxPxH, v_LxRxKxPxH, valid_RxP, p + forced_RxF.shape[1] + reason_tokens)
  forced = model(forced_RxF, cache=cache)
  rating.reason = decode(model, forced.cache, forced.logits_BxLxV[:, -1], keys_R, temperature_R,
                         max_new_tokens=reason_tokens, eos_id=eos_id, pad_id=pad_id, sampling=sampling)
  return rating


def rate_texts(engine, prompts: Sequence[str], candidates: Sequence[str] = RATING_SCALE,
               batch_size: int = 64) -> dict[str, np.ndarray]:
  """Host-side ratings of text prompts: {'distribution' (n, 7), 'expected' (n,) in [1, 7], 'argmax' (n,)}.

  One prefill per prompt (`engine.next_token_logits`, `batch_size` prompts per call)."""
  if len(candidates) != len(RATING_SCALE):
    raise ValueError(f"need the {len(RATING_SCALE)} rating candidates {RATING_SCALE[0]}..{RATING_SCALE[-1]}, "
                     f"got {list(candidates)}")
  ids = candidate_token_ids(engine.tokenizer, candidates)
  logits = [engine.next_token_logits(list(prompts[start:start + batch_size]), ids)
            for start in range(0, len(prompts), batch_size)]
  rating = rating_from_logits(np.concatenate(logits) if logits else np.zeros((0, len(ids)), np.float32))
  return {"distribution": np.asarray(rating.distribution_RxS, np.float64),
          "expected": np.asarray(rating.expected_R, np.float64), "argmax": np.asarray(rating.argmax_R)}
