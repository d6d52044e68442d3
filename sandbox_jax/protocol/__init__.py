"""protocol: the SANDBOX protocol's one home (DESIGN.md §3, §6.4-6.5, §6.7).

  templates.py  the prompt templates (default `reference`, `official`, `compact`, user overrides) and
                their text twin `render_prompt`; the rating scale `RATING_SCALE` ("1".."7") is
                defined in `data.schemas` (pure data) and re-exported here
  assemble.py   prompts assembled in token space inside jit (segments, truncation order, strip)
  prompts.py    pre-tokenized template pieces, the average-rating texts, the segment lists of a prompt
  rating.py     the one rating: the model's distribution over the candidates after one prefill,
                in jit (`rate`) and on the host (`rate_texts`), both through `rating_from_logits`
  outputs.py    the round's typed outputs (`RoundOutputs`, `Feedback`, `MemoryUsed`)
  official.py   the official preset (`OFFICIAL_SOCIETY`, `apply_official`)

The transcript-row schema is `data.schemas.TranscriptRow` (data stays free of jax); it is
re-exported here so the society and evaluation name it from the protocol.
"""

from sandbox_jax.data.schemas import RATING_SCALE, TranscriptRow
from sandbox_jax.protocol.assemble import Segment, assemble, literal, pad_token_rows
from sandbox_jax.protocol.prompts import PromptTables, segments, slot
from sandbox_jax.protocol.rating import Rating, candidate_token_ids, rate, rate_texts, rating_from_logits
from sandbox_jax.protocol.official import OFFICIAL_SOCIETY, apply_official
from sandbox_jax.protocol.outputs import Feedback, MemoryUsed, RoundOutputs
from sandbox_jax.protocol.templates import (Templates, compact_templates, official_templates, render, render_prompt,
                                            templates_from_config)

__all__ = ["OFFICIAL_SOCIETY", "RATING_SCALE", "Feedback", "MemoryUsed", "PromptTables", "Rating", "RoundOutputs",
           "Segment", "Templates", "TranscriptRow", "apply_official", "assemble", "candidate_token_ids", "compact_templates", "literal",
           "official_templates", "pad_token_rows", "rate", "rate_texts", "rating_from_logits", "render",
           "render_prompt", "segments", "slot", "templates_from_config"]
