"""Typed outputs of one society round (registered pytrees: they leave the compiled round as they are).

`RoundOutputs` holds, for every agent g (world-major rows) of one round, what the transcript row
(`data.schemas.TranscriptRow`, DESIGN.md §6.7) is decoded from: the draft and revision, the peers
sorted by rating (descending, absent raters last), the average, the reasons, the memory entry the
draft prompt used, and the observer's four ratings. Shape letters: A agents, K raters per draft,
T generated tokens, Q question / memory-question width, S rating candidates.
"""

import dataclasses

import jax

from sandbox_jax.inference.generate import Generation
from sandbox_jax.protocol.rating import Rating


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class Feedback:
  """Peers' ratings of each draft, sorted by rating (descending; ties keep the draw order; absent last)."""
  raters_AxK: jax.Array
  valid_AxK: jax.Array
  rating_AxK: jax.Array            # the protocol's rating: expected (default) or the chosen digit (official)
  argmax_AxK: jax.Array
  distribution_AxKxS: jax.Array
  average_A: jax.Array             # mean of the valid ratings
  reason_tokens_AxKxT: jax.Array | None   # None: score-only feedback (reason_tokens=0)
  reason_lengths_AxK: jax.Array | None    # 0 for absent raters


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class MemoryUsed:
  """The memory entry retrieved for each draft prompt (used only where `hit_A`)."""
  hit_A: jax.Array
  question_tokens_AxQ: jax.Array
  question_lengths_A: jax.Array
  answer_tokens_AxT: jax.Array
  answer_lengths_A: jax.Array
  round_A: jax.Array               # -1: a seeded prior memory


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class RoundOutputs:
  round: jax.Array                 # int32 scalar
  question_ids_A: jax.Array
  labels_A: jax.Array              # True = 'good'
  draft: Generation
  revised: Generation
  feedback: Feedback
  memory_used: MemoryUsed
  moral_before: Rating             # observer ratings; reasons are None when reason_tokens=0
  engagement_before: Rating
  moral_after: Rating
  engagement_after: Rating
