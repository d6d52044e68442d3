"""Round outputs → transcript rows (DESIGN.md §6.7): `data.schemas.TranscriptRow`, the one row schema —
the official record field for field, plus rating distributions, the memory entry used, and
provenance (world, seed, round, agent, models). Decoded on the host after the round."""

import numpy as np

from sandbox_jax.data.schemas import MemoryEntry, TranscriptRow
from sandbox_jax.protocol.outputs import RoundOutputs


def _text(tokenizer, tokens, length) -> str:
  return tokenizer.decode(np.asarray(tokens)[: int(length)])


def _floats(values, digits: int) -> tuple[float, ...]:
  return tuple(round(float(x), digits) for x in values)


def transcript_rows(out: RoundOutputs, question_texts: list[str], cfg, tokenizer, agent_model_name: str,
                    observer_model_name: str) -> list[TranscriptRow]:
  """One row per agent (world-major) of a round's outputs, as host (NumPy) arrays."""
  per_world = cfg.agents_per_world
  rnd = int(out.round)
  fb, used = out.feedback, out.memory_used
  observer = {"moral": (out.moral_before, out.moral_after), "engagement": (out.engagement_before, out.engagement_after)}
  rows = []
  for g in range(np.asarray(out.labels_A).shape[0]):
    world_index, agent = divmod(g, per_world)
    view, seed = cfg.worlds[world_index]
    n = int(np.sum(fb.valid_AxK[g]))
    scores = {}
    for aspect, (before, after) in observer.items():
      for when, rating in (("before", before), ("after", after)):
        scores[f"gen_{aspect}_score_{when}"] = round(float(rating.expected_R[g]), 4)
        scores[f"gen_{aspect}_reason_{when}"] = ("" if rating.reason is None else
                                                 _text(tokenizer, rating.reason.tokens_BxT[g], rating.reason.lengths_B[g]))
        scores[f"gen_{aspect}_argmax_{when}"] = int(rating.argmax_R[g])
        scores[f"gen_{aspect}_distribution_{when}"] = _floats(rating.distribution_RxS[g], 5)
    memory = (MemoryEntry(_text(tokenizer, used.question_tokens_AxQ[g], used.question_lengths_A[g]),
                          _text(tokenizer, used.answer_tokens_AxT[g], used.answer_lengths_A[g]), int(used.round_A[g]))
              if bool(used.hit_A[g]) else None)
    rows.append(TranscriptRow(
        world=view, world_index=world_index, seed=int(seed), round=rnd, iteration=rnd, agent_id=agent,
        label="good" if bool(out.labels_A[g]) else "bad", question=question_texts[g],
        draft_answer=_text(tokenizer, out.draft.tokens_BxT[g], out.draft.lengths_B[g]),
        target_id=tuple(int(r) % per_world for r in fb.raters_AxK[g][:n]),
        feedback=tuple(_text(tokenizer, fb.reason_tokens_AxKxT[g, j], fb.reason_lengths_AxK[g, j])
                       if fb.reason_tokens_AxKxT is not None else "" for j in range(n)),
        rating=_floats(fb.rating_AxK[g][:n], 4), rating_argmax=tuple(int(x) for x in fb.argmax_AxK[g][:n]),
        rating_distribution=tuple(_floats(d, 5) for d in fb.distribution_AxKxS[g][:n]),
        revised_answer=_text(tokenizer, out.revised.tokens_BxT[g], out.revised.lengths_B[g]),
        memory_used=memory, agent_model=agent_model_name, observer_model=observer_model_name,
        average_rating=round(float(fb.average_A[g]), 4), **scores))
  return rows
