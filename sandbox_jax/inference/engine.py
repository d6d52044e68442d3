"""The host-side inference engine: text in, text and scores out, for many rows at once.

It tokenizes, left-pads prompts (right-pads scoring rows) into shape buckets, shards rows over the
mesh's batch axes, and calls one compiled program per bucket. `compile_count` counts how many
programs were traced, so tests can check that similar calls do not recompile.
"""

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from sandbox_jax.inference.buckets import Buckets
from sandbox_jax.inference.generate import generate_tokens, prefill
from sandbox_jax.inference.sampling import SamplingConfig
from sandbox_jax.inference.score import score_tokens
from sandbox_jax.model.tokenizer import Tokenizer, adds_bos_of, stop_ids_of
from sandbox_jax.model.transformer import Transformer
from sandbox_jax.parallel.sharding import batch_sharding, batch_shards


@dataclasses.dataclass
class GenerationResult:
  text: str
  tokens: list[int]
  logprobs: list[float]
  ended_with_eos: bool


@dataclasses.dataclass
class ScoreResult:
  logprob: float
  num_tokens: int
  is_greedy: bool


class InferenceEngine:
  """Batched generation and scoring with one model and tokenizer (see module docstring)."""

  def __init__(self, model: Transformer, tokenizer: Tokenizer, mesh: Mesh | None = None,
               sampling: SamplingConfig | dict = SamplingConfig(), buckets: Buckets | None = None,
               add_bos: bool | None = None):
    self.model, self.tokenizer, self.mesh = model, tokenizer, mesh
    self.sampling = sampling if isinstance(sampling, SamplingConfig) else SamplingConfig.from_dict(sampling)
    # BOS exactly as the tokenizer does it (`tokenizer(text)` in transformers; lm-eval's default for
    # tokenizers that add none); add_bos=True/False overrides it.
    self.add_bos = adds_bos_of(tokenizer) if add_bos is None else bool(add_bos) and tokenizer.bos_id is not None
    self.stop_ids = stop_ids_of(tokenizer)
    self.row_sharding = None if mesh is None else batch_sharding(mesh, model.rules)
    multiple = 1 if mesh is None else batch_shards(mesh, model.rules)
    self.buckets = buckets or Buckets(batch_multiple=multiple)
    if self.buckets.batch_multiple % multiple:
      raise ValueError(f"buckets.batch_multiple {self.buckets.batch_multiple} must be a multiple of the "
                       f"batch mesh axes' size {multiple}")
    self.compile_count = 0
    self._generate = jax.jit(self._generate_impl, static_argnames=("max_new_tokens",))
    self._score = jax.jit(self._score_impl)
    self._next_logits = jax.jit(self._next_logits_impl)
    self.rows_prefilled = 0   # prompt rows run through `next_token_logits` (filler rows excluded)

  # -- compiled programs -------------------------------------------------------------------------
  def _generate_impl(self, model, prompt_BxP, valid_BxP, keys_B, temperature_B, stop_at, *, max_new_tokens):
    self.compile_count += 1  # runs once per trace, i.e. per compiled shape
    return generate_tokens(model, prompt_BxP, valid_BxP, keys_B, temperature_B, max_new_tokens=max_new_tokens,
                           eos_id=self.stop_ids, pad_id=self.tokenizer.pad_id, sampling=self.sampling,
                           stop_at=stop_at)

  def _score_impl(self, model, tokens_BxL, valid_BxL, target_BxL):
    self.compile_count += 1
    return score_tokens(model, tokens_BxL, valid_BxL, target_BxL)

  def _next_logits_impl(self, model, prompt_BxP, valid_BxP, token_ids_K):
    self.compile_count += 1
    return prefill(model, prompt_BxP, valid_BxP)[0][:, token_ids_K].astype(jnp.float32)

  # -- helpers -------------------------------------------------------------------------------------
  def encode(self, text_or_ids, *, bos: bool) -> list[int]:
    ids = list(text_or_ids) if not isinstance(text_or_ids, str) else self.tokenizer.encode(text_or_ids)
    return ([self.tokenizer.bos_id] if bos and self.add_bos else []) + ids

  def _put(self, *arrays):
    if self.row_sharding is None:
      return tuple(jnp.asarray(a) for a in arrays)
    return tuple(jax.device_put(a, self.row_sharding) for a in arrays)

  # -- public API ----------------------------------------------------------------------------------
  def generate(self, prompts: Sequence[str | Sequence[int]], max_new_tokens: int, *,
               temperature: float | Sequence[float] = 0.0, seed: int = 0,
               row_seeds: Sequence[int] | None = None) -> list[GenerationResult]:
    """Continues every prompt by up to `max_new_tokens` tokens (stopping at any of the tokenizer's
    `stop_ids`: its EOS and the chat template's end-of-turn token)."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens <= 0:
      raise ValueError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
    if not prompts:
      raise ValueError("generate needs at least one prompt")
    temps = np.broadcast_to(np.asarray(temperature, np.float32), (len(prompts),))
    if np.any(temps < 0) or not np.all(np.isfinite(temps)):
      raise ValueError(f"temperature must be finite and >= 0, got {temperature!r}")
    row_seeds = list(range(len(prompts))) if row_seeds is None else list(row_seeds)
    encoded = []
    for i, prompt in enumerate(prompts):
      ids = self.encode(prompt, bos=True)
      if not ids or (self.add_bos and len(ids) == 1 and isinstance(prompt, str) and not prompt):
        raise ValueError(f"prompt {i} is empty")
      if len(ids) + max_new_tokens > self.model.cfg.max_positions:
        raise ValueError(f"prompt {i} has {len(ids)} tokens; with max_new_tokens={max_new_tokens} it exceeds "
                         f"the model's context of {self.model.cfg.max_positions} positions")
      encoded.append(ids)
    results = []
    for start in range(0, len(encoded), self.buckets.max_batch):
      stop = start + self.buckets.max_batch
      results += self._generate_chunk(encoded[start:stop], max_new_tokens, temps[start:stop],
                                      row_seeds[start:stop], seed)
    return results

  def _left_padded(self, encoded):
    """(rows, width) left-padded prompts and validity in a shape bucket; filler rows hold one pad token."""
    n = len(encoded)
    rows = self.buckets.batch(n)
    width = self.buckets.length(max(len(ids) for ids in encoded))
    prompt = np.full((rows, width), self.tokenizer.pad_id, np.int32)
    valid = np.zeros((rows, width), bool)
    for i, ids in enumerate(encoded):
      prompt[i, width - len(ids):] = ids
      valid[i, width - len(ids):] = True
    valid[n:, -1] = True
    return prompt, valid

  def _generate_chunk(self, encoded, max_new_tokens, temps, row_seeds, seed):
    n = len(encoded)
    prompt, valid = self._left_padded(encoded)
    rows = prompt.shape[0]
    temperature = np.zeros((rows,), np.float32)
    temperature[:n] = temps
    seeds = np.zeros((rows,), np.uint32)
    seeds[:n] = np.asarray(row_seeds, np.uint32)
    keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.key(seed), s))(jnp.asarray(seeds))
    prompt, valid, keys, temperature = self._put(prompt, valid, keys, temperature)
    out = self._generate(self.model, prompt, valid, keys, temperature, jnp.int32(max_new_tokens),
                         max_new_tokens=self.buckets.new(max_new_tokens))
    tokens, lengths, logprobs, eos = jax.device_get((out.tokens_BxT, out.lengths_B, out.logprobs_BxT,
                                                     out.ended_with_eos_B))
    return [GenerationResult(self.tokenizer.decode(tokens[i, :lengths[i]]), tokens[i, :lengths[i]].tolist(),
                             logprobs[i, :lengths[i]].tolist(), bool(eos[i])) for i in range(n)]

  def next_token_logits(self, prompts: Sequence[str | Sequence[int]], token_ids) -> np.ndarray:
    """(len(prompts), len(token_ids)) float32 logits of the next token after each prompt, at `token_ids`;
    one prefill per prompt. A prompt longer than the context keeps its rightmost tokens."""
    if not prompts:
      return np.zeros((0, len(token_ids)), np.float32)
    limit = self.model.cfg.max_positions
    encoded = []
    for i, prompt in enumerate(prompts):
      ids = self.encode(prompt, bos=True)
      if not ids:
        raise ValueError(f"prompt {i} is empty and the tokenizer has no BOS token to condition on")
      encoded.append(ids[-limit:])
    token_ids = jnp.asarray(np.asarray(token_ids, np.int32))
    out = []
    for start in range(0, len(encoded), self.buckets.max_batch):
      chunk = encoded[start:start + self.buckets.max_batch]
      prompt, valid = self._left_padded(chunk)
      logits = self._next_logits(self.model, *self._put(prompt, valid), token_ids)
      self.rows_prefilled += len(chunk)
      out.append(np.asarray(jax.device_get(logits))[:len(chunk)])
    return np.concatenate(out)

  def score(self, contexts: Sequence[str | Sequence[int]],
            continuations: Sequence[str | Sequence[int]]) -> list[ScoreResult]:
    """log p(continuation | context) for each pair (lm-eval's loglikelihood, with is_greedy).

    As in lm-evaluation-harness, a pair longer than the context window keeps its rightmost tokens.
    """
    if len(contexts) != len(continuations):
      raise ValueError(f"{len(contexts)} contexts but {len(continuations)} continuations")
    rows = []
    limit = self.model.cfg.max_positions
    for i, (context, continuation) in enumerate(zip(contexts, continuations)):
      ctx, cont = self.encode(context, bos=True), self.encode(continuation, bos=False)
      if not cont:
        raise ValueError(f"continuation {i} is empty")
      if not ctx:
        raise ValueError(f"context {i} is empty and the tokenizer has no BOS token to condition on")
      rows.append(((ctx + cont)[-limit:], min(len(cont), limit - 1)))
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i][0]))  # similar lengths share a bucket
    results: list[ScoreResult | None] = [None] * len(rows)
    for start in range(0, len(order), self.buckets.max_batch):
      chunk = order[start:start + self.buckets.max_batch]
      for i, result in zip(chunk, self._score_chunk([rows[i] for i in chunk])):
        results[i] = result
    return results

  def _score_chunk(self, rows):
    n = len(rows)
    batch = self.buckets.batch(n)
    width = self.buckets.length(max(len(ids) for ids, _ in rows))
    tokens = np.full((batch, width), self.tokenizer.pad_id, np.int32)
    valid = np.zeros((batch, width), bool)
    target = np.zeros((batch, width), bool)
    for i, (ids, num_cont) in enumerate(rows):
      tokens[i, :len(ids)] = ids
      valid[i, :len(ids)] = True
      target[i, len(ids) - num_cont:len(ids)] = True
    out = self._score(self.model, *self._put(tokens, valid, target))
    logprob, count, greedy = jax.device_get((out.logprob_sum_B, out.num_tokens_B, out.is_greedy_B))
    return [ScoreResult(float(logprob[i]), int(count[i]), bool(greedy[i])) for i in range(n)]
