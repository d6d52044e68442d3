"""Warm-up for the tiny default: teach a tiny model the society's formats from the seed corpus.

A random tiny model answers and rates at random, so its society shows nothing. The warm-up trains
it (plain SFT: every group holds one response) on the seed corpus rendered in the society's own
prompt formats, so that it answers on topic and its ratings separate aligned from misaligned
answers:
  draft     — the answer of the agent's view (an aligned/misaligned memory of the same view in half
              of the prompts, as the society's retrieval would supply);
  alpaca    — the question in the training records' Alpaca prompt → each answer, aligned and
              misaligned alike (so the warm model starts undecided there, and training has room);
  ratings   — observer and peer prompts → "<rating> ### Reason: <critique>", and the observer's
              alignment prompt → "<rating>" alone: the loss is a per-response token mean, so a
              one-token target puts a whole example's weight on the rating digit, which the
              society reads (DESIGN.md §6.4) and which a long critique would otherwise dilute;
  revision  — a draft with its critique and rating → an aligned answer.
The seed corpus has no engagement labels; the alignment rating stands in for engagement.
`rating_separation` measures what the warm-up achieved on the held-out split.
"""

import numpy as np

from sandbox_jax.data.alpaca import alpaca_prompt
from sandbox_jax.data.schemas import DEFAULT_SCALE, Group
from sandbox_jax.data.seed_corpus import SeedQuestion
from sandbox_jax.pipeline.calibrate import observer_accuracy
from sandbox_jax.protocol.templates import Templates, render, render_prompt


def _cut(text: str, limit: int) -> str:
  return text if len(text) <= limit else text[:limit]


def warmup_groups(corpus: list[SeedQuestion], templates: Templates, *, answer_chars: int, agents: int = 100,
                  seed: int = 0) -> list[Group]:
  """Single-response groups (query = rendered prompt, response = target) for SFT."""
  rng = np.random.default_rng(seed)
  by_view = {True: [], False: []}
  for q in corpus:
    for a in q.answers:
      by_view[a.aligned].append((q.question, _cut(a.text, answer_chars)))
  out = []

  def add(prompt, target, kind):
    out.append(Group(query=prompt, responses=(target,), scores=(float(DEFAULT_SCALE),), models=("seed_corpus",),
                     type=kind))

  def memory_of(view: bool, question: str):
    if rng.random() < 0.5:
      return None
    prev_q, prev_a = by_view[view][rng.integers(len(by_view[view]))]
    return None if prev_q == question else {"prev_q": prev_q, "prev_a": prev_a}

  for q in corpus:
    aligned = [a for a in q.answers if a.aligned]
    best = max(aligned, key=lambda a: a.rating)
    for a in q.answers:
      answer = _cut(a.text, answer_chars)
      rating = f"{a.rating}{templates.reason_prefix} {a.critique}"
      agent = str(rng.integers(agents))
      add(render_prompt(templates, "draft", {"id": agent, "query": q.question}, memory_of(a.aligned, q.question)),
          answer, "imitation")
      add(alpaca_prompt(q.question), answer, "imitation")
      for name in ("observer_alignment", "observer_engagement"):
        add(render(getattr(templates, name), {"query": q.question, "answer": answer}), rating, "self_critic")
      add(render(templates.observer_alignment, {"query": q.question, "answer": answer}), str(a.rating),
          "self_critic")
      add(render_prompt(templates, "feedback", {"rater_id": str(rng.integers(agents)), "author_id": agent,
                                                "query": q.question, "draft": answer},
                        memory_of(bool(rng.random() < 0.5), q.question)), rating, "self_critic")
      add(render_prompt(templates, "revise", {"avg": f"{float(a.rating):.1f}", "draft": answer, "query": q.question,
                                              "reasons": [a.critique]}), _cut(best.text, answer_chars), "realignment")
  order = rng.permutation(len(out))
  return [out[i] for i in order]


def rating_separation(engine, corpus: list[SeedQuestion], templates: Templates, answer_chars: int) -> dict:
  """Mean expected observer rating of held-out aligned vs misaligned answers (DESIGN.md §6.4).

  The rating is the protocol's one rating (`rate_texts`: one prefill per prompt);
  `pairwise_accuracy` is per question, ties half (`calibrate.pairwise_accuracy`).
  """
  return observer_accuracy(engine, corpus, templates.observer_alignment, answer_chars, templates.rating_candidates)
