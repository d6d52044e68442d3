"""Rated groups → fixed-shape NumPy batches for the Stable Alignment trainer.

A batch holds G groups (padded with empty groups), each with R response slots (padded with empty
responses), each a token row of length T:

    tokens_GxRxT      int32   [bos] + prompt + response + [eos], right-padded with pad_id
    targets_GxRxT     int32   tokens shifted left by one: targets[t] = tokens[t + 1] (pad at the end)
    loss_mask_GxRxT   float32 1.0 exactly where targets[t] is a response token or the eos
    input_mask_GxRxT  bool    True on real (non-padding) tokens
    scores_GxR        float32 the responses' ratings (0 in padding)
    response_mask_GxR bool    real responses
    group_mask_G      bool    real groups

Next-token convention: feed `tokens` to the model; `logits[..., t, :]` predicts `targets[..., t]`,
so `sequence_logprobs(logits, targets, loss_mask)` gives each response's summed log-probability
and its token count (response tokens + 1 for the eos). Prompt positions and padding carry 0. With
a sequence s = [bos] + P + Y + [eos] of length n and prefix length p = |[bos] + P|:
loss_mask[t] = 1 iff p - 1 <= t <= n - 2 (and t >= 0). Masks come from lengths, never from
comparing ids with pad_id, so tokenizers whose pad is their eos are fine.

`append_eos=False` leaves out the eos, as the official trainer does (its tokenizer adds a bos and
no eos to `query + response`): rows are [bos] + prompt + response and the loss covers the response
tokens only (a response cut to nothing then has no loss token).

The row format (`RowFormat`, default `PLAIN_ROWS`: the tokenizer's bos where it adds one, its eos)
frames rows of chat-rendered prompts differently (`pipeline.records.chat_rows`): no bos of ours
(the chat template writes what the model expects, its own BOS included where it has one, as
`apply_chat_template` tokenizes with `add_special_tokens=False`) and the template's end-of-turn token
(`<|im_end|>`, `<|eot_id|>`) in place of the eos, so a row is exactly what `apply_chat_template`
gives for the conversation [user, assistant] up to and including the end-of-turn token, and the loss
covers the response and the end-of-turn token (with `append_eos=False`, the response alone). The
response is tokenized on its own, as the model generated it after the prompt, and kept as written:
that equals the whole conversation's tokenization except where the template edits message content
(Llama-3's trims its edges) or the response's first characters would merge with the assistant
header's last ones (a response starting with a newline after SmolLM2's "assistant\n").

Truncation to T: the prompt is cut from the LEFT first (the end of the prompt, '### Response:' or a
chat's opened assistant turn, stays next to the response; a chat prompt loses its head first — the
template's BOS, system and user headers — so `max_len` should hold the chat prompts), down to
`min_prompt_tokens` tokens (default 1, so the first response token has a predecessor even without a
bos); then the response is cut from the RIGHT. The bos and the eos (end-of-turn) are always kept, so
every real response has at least one loss token.

More than R responses: the best-rated one (first among ties) is always kept and R - 1 of the
others are sampled without replacement with the given NumPy Generator; kept responses stay in
their original order. (The official collator samples R uniformly and may drop the best one.)
"""

from typing import NamedTuple, Sequence

import numpy as np

from sandbox_jax.data.schemas import Group
from sandbox_jax.data.tokenizer import Tokenizer

DEFAULT_MAX_RESPONSES = 3  # official `num_comp`


class RowFormat(NamedTuple):
  """How a row frames prompt + response (module doc): `add_bos` — the tokenizer's bos first where the
  tokenizer adds one (True) or never (False); `end_id` — the id that ends the response when one is
  appended (None: the tokenizer's eos)."""
  add_bos: bool = True
  end_id: int | None = None


PLAIN_ROWS = RowFormat()


class GroupBatch(NamedTuple):
  """A batch of rated groups (a NamedTuple, hence a JAX pytree as is)."""
  tokens_GxRxT: np.ndarray
  targets_GxRxT: np.ndarray
  loss_mask_GxRxT: np.ndarray
  input_mask_GxRxT: np.ndarray
  scores_GxR: np.ndarray
  response_mask_GxR: np.ndarray
  group_mask_G: np.ndarray


def truncate(prompt_ids: Sequence[int], response_ids: Sequence[int], budget: int,
             min_prompt_tokens: int = 1) -> tuple[list[int], list[int]]:
  """Fits prompt + response into `budget` tokens: prompt from the left, then response from the
  right; the prompt keeps at least min(len(prompt), min_prompt_tokens) tokens."""
  prompt_ids, response_ids = list(prompt_ids), list(response_ids)
  if len(prompt_ids) + len(response_ids) <= budget:
    return prompt_ids, response_ids
  floor = min(len(prompt_ids), min_prompt_tokens)
  if budget < floor:
    raise ValueError(f"max_len leaves {budget} tokens for prompt + response, fewer than the "
                     f"{floor} prompt token(s) kept (min_prompt_tokens={min_prompt_tokens})")
  keep_prompt = max(floor, budget - len(response_ids))
  prompt_ids = prompt_ids[len(prompt_ids) - keep_prompt:]
  return prompt_ids, response_ids[:budget - keep_prompt]


def encode_sequence(tokenizer: Tokenizer, prompt_ids: Sequence[int], response: str, max_len: int,
                    min_prompt_tokens: int = 1, append_eos: bool = True,
                    rows: RowFormat = PLAIN_ROWS) -> tuple[list[int], int]:
  """Returns (sequence, prefix_len): [bos] + prompt + response + [eos] (the bos only where the
  tokenizer itself adds one and `rows.add_bos`, the eos — `rows.end_id` when set — only with
  `append_eos`) truncated to max_len, and the number of tokens before the first response token."""
  adds_bos = rows.add_bos and tokenizer.bos_id is not None and getattr(tokenizer, "adds_bos", True)
  bos = [tokenizer.bos_id] if adds_bos else []
  eos = [tokenizer.eos_id if rows.end_id is None else rows.end_id] if append_eos else []
  budget = max_len - len(bos) - len(eos)
  prompt, resp = truncate(prompt_ids, tokenizer.encode(response), budget, min_prompt_tokens)
  return bos + prompt + resp + eos, len(bos) + len(prompt)


def select_responses(scores: Sequence[float], max_responses: int,
                     rng: np.random.Generator) -> list[int]:
  """Indices of the kept responses (ascending): all if they fit, else the best + a sample."""
  n = len(scores)
  if n <= max_responses:
    return list(range(n))
  best = max(range(n), key=lambda i: (scores[i], -i))
  others = [i for i in range(n) if i != best]
  sampled = rng.choice(len(others), size=max_responses - 1, replace=False)
  return sorted([best] + [others[int(j)] for j in sampled])


def make_group_batch(groups: Sequence[Group | None], tokenizer: Tokenizer, *, max_len: int,
                     groups_per_batch: int | None = None,
                     max_responses: int = DEFAULT_MAX_RESPONSES,
                     rngs: Sequence[np.random.Generator] | None = None,
                     min_prompt_tokens: int = 1, append_eos: bool = True,
                     rows: RowFormat = PLAIN_ROWS) -> GroupBatch:
  """One batch. `None` entries (and slots past len(groups) up to groups_per_batch) are padding.

  `rngs[i]` samples group i's responses when it has more than max_responses (default: a
  Generator seeded with 0 per group).
  """
  G = len(groups) if groups_per_batch is None else groups_per_batch
  R, T = max_responses, max_len
  if len(groups) > G:
    raise ValueError(f"{len(groups)} groups do not fit groups_per_batch={G}")
  if R < 1 or T < 2:
    raise ValueError(f"need max_responses >= 1 and max_len >= 2, got {R} and {T}")
  tokens = np.full((G, R, T), tokenizer.pad_id, np.int32)
  targets = np.full((G, R, T), tokenizer.pad_id, np.int32)
  loss_mask = np.zeros((G, R, T), np.float32)
  input_mask = np.zeros((G, R, T), bool)
  scores = np.zeros((G, R), np.float32)
  response_mask = np.zeros((G, R), bool)
  group_mask = np.zeros((G,), bool)
  for g, group in enumerate(groups):
    if group is None:
      continue
    group_mask[g] = True
    rng = rngs[g] if rngs is not None else np.random.default_rng(0)
    prompt_ids = tokenizer.encode(group.query)
    for r, i in enumerate(select_responses(group.scores, R, rng)):
      seq, prefix = encode_sequence(tokenizer, prompt_ids, group.responses[i], T,
                                    min_prompt_tokens, append_eos, rows)
      n = len(seq)
      tokens[g, r, :n] = seq
      targets[g, r, :n - 1] = seq[1:]
      loss_mask[g, r, max(prefix - 1, 0):n - 1] = 1.0
      input_mask[g, r, :n] = True
      scores[g, r] = group.scores[i]
      response_mask[g, r] = True
  return GroupBatch(tokens, targets, loss_mask, input_mask, scores, response_mask, group_mask)
