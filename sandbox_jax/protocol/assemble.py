"""Prompts assembled in token space, inside jit.

A prompt is a list of segments — pre-tokenized literal pieces and slot arrays (rows × width with
per-row lengths) — concatenated per row and left-padded to a fixed width by a stable argsort of the
validity mask (a gather; no host round-trip, no Python loop over rows).

Truncation order when a row is longer than the width (documented behaviour of the protocol):
  1. the optional memory block is dropped whole;
  2. `truncatable` slots (the draft, then reasons) are cut from their end, in the order given;
  3. if still too long, the prompt keeps its last `width` tokens (the instruction end survives).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Segment:
  tokens_RxW: jax.Array        # (R, W) or (W,) for a literal shared by all rows
  lengths_R: jax.Array         # (R,) or scalar
  optional: bool = False       # part of the memory block: dropped first on overflow
  truncate_rank: int | None = None  # cut from the end on overflow, lowest rank first


def literal(ids: list[int], optional: bool = False) -> Segment:
  return Segment(jnp.asarray(np.asarray(ids, np.int32).reshape(-1)), jnp.asarray(len(ids), jnp.int32), optional)


def assemble(segments: list[Segment], rows: int, width: int, pad_id: int, present_R=None):
  """Concatenates segments per row; returns (tokens_RxW, valid_RxW), left-padded.

  `present_R` (bool) switches the optional segments on per row (memory hit or not).
  """
  lengths = []
  for seg in segments:
    length_R = jnp.broadcast_to(seg.lengths_R, (rows,)).astype(jnp.int32)
    if seg.optional and present_R is not None:
      length_R = jnp.where(present_R, length_R, 0)
    lengths.append(length_R)
  total_R = sum(lengths)
  overflow_R = total_R - width
  drop_optional = overflow_R > 0
  lengths = [jnp.where(drop_optional, 0, n) if s.optional else n for s, n in zip(segments, lengths)]
  overflow_R = sum(lengths) - width
  for rank in sorted({s.truncate_rank for s in segments if s.truncate_rank is not None}):
    for i, seg in enumerate(segments):
      if seg.truncate_rank == rank:
        cut_R = jnp.clip(overflow_R, 0, lengths[i])
        lengths[i] = lengths[i] - cut_R
        overflow_R = overflow_R - cut_R
  pieces, valid = [], []
  for seg, length_R in zip(segments, lengths):
    tokens = seg.tokens_RxW if seg.tokens_RxW.ndim == 2 else jnp.broadcast_to(seg.tokens_RxW, (rows,) + seg.tokens_RxW.shape)
    pieces.append(tokens.astype(jnp.int32))
    valid.append(jnp.arange(tokens.shape[1])[None, :] < length_R[:, None])
  tokens_RxT = jnp.concatenate(pieces, axis=1)
  valid_RxT = jnp.concatenate(valid, axis=1)
  total = tokens_RxT.shape[1]
  if total < width:
    tokens_RxT = jnp.pad(tokens_RxT, ((0, 0), (width - total, 0)), constant_values=pad_id)
    valid_RxT = jnp.pad(valid_RxT, ((0, 0), (width - total, 0)))
  order_RxT = jnp.argsort(valid_RxT, axis=1, stable=True)  # invalid first, valid in original order
  tokens_RxT = jnp.take_along_axis(tokens_RxT, order_RxT, axis=1)[:, -width:]
  valid_RxT = jnp.take_along_axis(valid_RxT, order_RxT, axis=1)[:, -width:]
  return jnp.where(valid_RxT, tokens_RxT, pad_id), valid_RxT


def pad_token_rows(rows: list[list[int]], width: int, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
  """Host helper: right-padded (len(rows), width) int32 tokens (cut at width) and their lengths."""
  tokens = np.full((len(rows), width), pad_id, np.int32)
  lengths = np.zeros((len(rows),), np.int32)
  for i, ids in enumerate(rows):
    ids = ids[:width]
    tokens[i, :len(ids)] = ids
    lengths[i] = len(ids)
  return tokens, lengths


def strip_whitespace(tokens_RxT, lengths_R, whitespace_V, pad_id: int):
  """Python's `str.strip()` in token space: drops leading and trailing whitespace-only tokens of
  right-padded rows (exact for the byte tokenizer on ASCII whitespace; a BPE token that fuses a space
  with text keeps it). Returns (tokens_RxT, lengths_R), right-padded."""
  width = tokens_RxT.shape[1]
  inside_RxT = jnp.arange(width)[None, :] < lengths_R[:, None]
  space_RxT = jnp.asarray(whitespace_V)[tokens_RxT] & inside_RxT
  text_RxT = inside_RxT & ~space_RxT
  lead_R = jnp.sum(jnp.cumprod(space_RxT, axis=1), axis=1)           # whitespace before the first text token
  last_R = jnp.max(jnp.where(text_RxT, jnp.arange(width)[None, :], -1), axis=1)
  new_lengths_R = jnp.maximum(last_R + 1 - lead_R, 0).astype(lengths_R.dtype)
  index_RxT = jnp.minimum(jnp.arange(width)[None, :] + lead_R[:, None], width - 1)
  shifted_RxT = jnp.take_along_axis(tokens_RxT, index_RxT, axis=1)
  return jnp.where(jnp.arange(width)[None, :] < new_lengths_R[:, None], shifted_RxT, pad_id), new_lengths_R
