"""Pre-tokenized template pieces and the per-prompt segment lists of one round.

Everything here is built once on the host (`PromptTables.build`); inside the round only arrays
are gathered and concatenated (see assemble.py).
"""

import dataclasses

import jax.numpy as jnp
import numpy as np

from sandbox_jax.protocol.assemble import Segment, literal, pad_token_rows
from sandbox_jax.protocol.rating import candidate_token_ids
from sandbox_jax.protocol.templates import Templates, split_template

AVG_STEPS = 61  # average ratings 1.0, 1.1, ..., 7.0 are shown with one decimal


@dataclasses.dataclass(frozen=True)
class PromptTables:
  pieces: dict                  # template name -> tuple of ('text', token ids tuple) | ('slot', name)
  bos: tuple[int, ...]          # () or (bos_id,)
  agent_id_tokens: np.ndarray   # (agents_per_world, W) the id as text, tokenized
  agent_id_lengths: np.ndarray
  avg_tokens: np.ndarray        # (61, W) "1.0" .. "7.0"
  avg_lengths: np.ndarray
  candidate_ids: np.ndarray     # (S,) the single tokens of the rating candidates
  reason_prefix: np.ndarray     # " ### Reason:"
  newline: tuple[int, ...]

  @classmethod
  def build(cls, templates: Templates, tokenizer, agents_per_world: int, add_bos: bool) -> "PromptTables":
    pieces = {}
    for name in ("memory", "draft", "feedback", "revise", "observer_alignment", "observer_engagement"):
      pieces[name] = tuple((kind, tuple(tokenizer.encode(v)) if kind == "text" else v)
                           for kind, v in split_template(getattr(templates, name)))
    candidates = candidate_token_ids(tokenizer, templates.rating_candidates,
                                     "config key society.templates.rating_candidates")
    id_tokens, id_lengths = pad_token_rows([tokenizer.encode(str(i)) for i in range(agents_per_world)], 8,
                                           tokenizer.pad_id)
    avg_tokens, avg_lengths = pad_token_rows([tokenizer.encode(f"{1 + i / 10:.1f}") for i in range(AVG_STEPS)], 8,
                                             tokenizer.pad_id)
    bos = (tokenizer.bos_id,) if add_bos and tokenizer.bos_id is not None else ()
    return cls(pieces, bos, id_tokens, id_lengths, avg_tokens, avg_lengths, candidates,
               np.asarray(tokenizer.encode(templates.reason_prefix), np.int32), tuple(tokenizer.encode("\n")))


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
        for mkind, mvalue in tables.pieces["memory"]:
          if mkind == "text":
            out.append(literal(list(mvalue), optional=True))
          else:
            seg = memory[mvalue]
            out.append(dataclasses.replace(seg, optional=True))
    else:
      v = values[value]
      out.extend(v if isinstance(v, list) else [v])
  return [s for s in out if s.tokens_RxW.shape[-1] > 0]
