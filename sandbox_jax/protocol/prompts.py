"""Pre-tokenized template pieces and the per-prompt segment lists of one round.

Everything here is built once on the host (`PromptTables.build`); inside the round only arrays
are gathered and concatenated (see assemble.py).
"""

import dataclasses

import jax.numpy as jnp
import numpy as np

from sandbox_jax.model.tokenizer import adds_bos_of
from sandbox_jax.protocol.assemble import Segment, literal, pad_token_rows
from sandbox_jax.protocol.rating import candidate_token_ids
from sandbox_jax.protocol.templates import Templates, split_template

AVG_STEPS = 61  # 'tenths': average ratings 1.0, 1.1, ..., 7.0 are shown with one decimal
AVERAGE_FORMATS = ("tenths", "python")


def average_texts(average: str, max_raters: int) -> list[str]:
  """Every text the average rating can take. 'tenths': the expected-rating average to one decimal,
  index round((avg - 1) * 10). 'python' (official): the mean of n integer ratings as Python prints the
  float (`5.333333333333333`, `5.0`), index (n - 1) * (6 * max_raters + 1) + (sum - n)."""
  if average == "tenths":
    return [f"{1 + i / 10:.1f}" for i in range(AVG_STEPS)]
  if average == "python":
    span = 6 * max_raters + 1
    return [str(float(n + j) / n) if n + j <= 7 * n else "" for n in range(1, max_raters + 1) for j in range(span)]
  raise ValueError(f"average format {average!r} not in {AVERAGE_FORMATS}")


@dataclasses.dataclass(frozen=True)
class PromptTables:
  pieces: dict                  # template name -> tuple of ('text', token ids tuple) | ('slot', name)
  bos: tuple[int, ...]          # () or (bos_id,)
  agent_id_tokens: np.ndarray   # (agents_per_world, W) the id as text, tokenized
  agent_id_lengths: np.ndarray
  avg_tokens: np.ndarray        # (N, W) every text of the average rating (`average_texts`)
  avg_lengths: np.ndarray
  candidate_ids: np.ndarray     # (S,) the single tokens of the rating candidates
  reason_prefix: np.ndarray     # " ### Reason:"
  reasons_header: tuple[int, ...]
  reason_separator: tuple[int, ...]
  reason_terminator: tuple[int, ...]
  average: str                  # 'tenths' | 'python'
  max_raters: int
  whitespace_V: np.ndarray | None  # (V,) bool: the token is whitespace only (for stripping), or None

  @classmethod
  def build(cls, templates: Templates, tokenizer, agents_per_world: int, add_bos: bool, *,
            average: str = "tenths", max_raters: int = 4, strip: bool = False) -> "PromptTables":
    encode = lambda text: tuple(tokenizer.encode(text)) if text else ()
    pieces = {}
    for name in ("memory", "draft", "feedback", "revise", "observer_alignment", "observer_engagement"):
      pieces[name] = tuple((kind, encode(v) if kind == "text" else v)
                           for kind, v in split_template(getattr(templates, name)))
    feedback_memory = templates.memory if templates.feedback_memory is None else templates.feedback_memory
    pieces["feedback_memory"] = tuple((kind, encode(v) if kind == "text" else v)
                                      for kind, v in split_template(feedback_memory))
    candidates = candidate_token_ids(tokenizer, templates.rating_candidates,
                                     "config key society.templates.rating_candidates")
    id_tokens, id_lengths = pad_token_rows([tokenizer.encode(str(i)) for i in range(agents_per_world)], 8,
                                           tokenizer.pad_id)
    avg_tokens, avg_lengths = pad_token_rows([list(encode(t)) for t in average_texts(average, max_raters)], 24,
                                             tokenizer.pad_id)
    bos = (tokenizer.bos_id,) if add_bos and adds_bos_of(tokenizer) else ()  # BOS as the tokenizer adds it
    return cls(pieces, bos, id_tokens, id_lengths, avg_tokens, avg_lengths, candidates,
               np.asarray(tokenizer.encode(templates.reason_prefix), np.int32), encode(templates.reasons_header),
               encode(templates.reason_separator), encode(templates.reason_terminator), average, max_raters,
               whitespace_tokens(tokenizer) if strip else None)


def whitespace_tokens(tokenizer) -> np.ndarray:
  """(V,) bool: the token decodes to whitespace only (special tokens, which decode to "", are not)."""
  texts = [tokenizer.decode([i]) for i in range(tokenizer.vocab_size)]
  return np.asarray([bool(t) and not t.strip() for t in texts], bool)


def average_index(tables: PromptTables, average_R, ratings_RxK, valid_RxK):
  """Row index into `avg_tokens` of the average `average_R` of the valid ratings (see `average_texts`;
  'python' reads the integer sum and count from the ratings themselves)."""
  if tables.average == "python":
    count_R = jnp.maximum(jnp.sum(valid_RxK, axis=1), 1)
    total_R = jnp.sum(jnp.where(valid_RxK, jnp.round(ratings_RxK), 0), axis=1).astype(jnp.int32)
    return (count_R - 1) * (6 * tables.max_raters + 1) + (total_R - count_R)
  avg_R = average_R
  return jnp.clip(jnp.round((avg_R - 1.0) * 10).astype(jnp.int32), 0, AVG_STEPS - 1)


def reasons_segments(tables: PromptTables, tokens_RxKxT, lengths_RxK, valid_RxK) -> list[Segment]:
  """The `{reasons}` block in token space: header, the valid reasons in order, the separator between
  two and the terminator after each (`render_prompt` is its text twin); None tokens: score-only, empty."""
  if tokens_RxKxT is None:
    return []
  out = [slot(np.asarray(tables.reasons_header, np.int32), len(tables.reasons_header))]
  separator = np.asarray(tables.reason_separator, np.int32)
  terminator = np.asarray(tables.reason_terminator, np.int32)
  for j in range(tokens_RxKxT.shape[1]):
    if j:
      out.append(slot(separator, jnp.where(valid_RxK[:, j], len(separator), 0)))
    out.append(slot(tokens_RxKxT[:, j], jnp.where(valid_RxK[:, j], lengths_RxK[:, j], 0), truncate_rank=1))
    out.append(slot(terminator, jnp.where(valid_RxK[:, j], len(terminator), 0)))
  return out


def slot(tokens, lengths, truncate_rank=None, optional=False) -> Segment:
  return Segment(jnp.asarray(tokens), jnp.asarray(lengths), optional, truncate_rank)


def segments(tables: PromptTables, name: str, values: dict, memory: dict | None = None) -> list[Segment]:
  """The segment list of template `name`; `values[slot]` is a Segment or a list of Segments.

  `memory` holds the memory block's slot values (prev_q, prev_a); its pieces become optional.
  """
  out = [literal(list(tables.bos))]
  for kind, value in tables.pieces[name]:
    if kind == "text":
      out.append(literal(list(value)))
    elif value == "memory":
      if memory is not None:
        for mkind, mvalue in tables.pieces["feedback_memory" if name == "feedback" else "memory"]:
          if mkind == "text":
            out.append(literal(list(mvalue), optional=True))
          else:
            seg = memory[mvalue]
            out.append(dataclasses.replace(seg, optional=True))
    else:
      v = values[value]
      out.extend(v if isinstance(v, list) else [v])
  return [s for s in out if s.tokens_RxW.shape[-1] > 0]
