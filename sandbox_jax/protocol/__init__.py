"""protocol: the SANDBOX protocol's one home (DESIGN.md §3, §6.4-6.5, §6.7).

  templates.py  the prompt templates (official, compact, user overrides); the rating scale
                `RATING_SCALE` ("1".."7") is defined in `data.schemas` (pure data) and re-exported here
  assemble.py   prompts assembled in token space inside jit (segments, truncation order)
  prompts.py    pre-tokenized template pieces and the segment lists of one prompt
  rating.py     the one rating: the model's distribution over the candidates after one prefill,
                in jit (`rate`) and on the host (`rate_texts`)

The transcript-row schema is `data.schemas.TranscriptRow` (data stays free of jax); it is
re-exported here so the society and evaluation name it from the protocol.
"""

from sandbox_jax.data.schemas import RATING_SCALE, TranscriptRow
from sandbox_jax.protocol.assemble import Segment, assemble, literal, pad_token_rows
from sandbox_jax.protocol.prompts import PromptTables, segments, slot
from sandbox_jax.protocol.rating import Rating, candidate_token_ids, rate, rate_texts, rating_from_logits
from sandbox_jax.protocol.templates import Templates, compact_templates, render, templates_from_config

__all__ = ["RATING_SCALE", "PromptTables", "Rating", "Segment", "Templates", "TranscriptRow", "assemble",
           "candidate_token_ids", "compact_templates", "literal", "pad_token_rows", "rate", "rate_texts",
           "rating_from_logits", "render", "segments", "slot", "templates_from_config"]
