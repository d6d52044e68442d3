"""Stage `simulate`: run the society with the configured agent and observer models.

In official mode (`society.protocol = 'official'`) a memory capacity that could evict a memory in
`society.rounds` rounds is a config error (`memory.check_no_eviction`; the original's memory is
unbounded).
"""

import dataclasses

from sandbox_jax.data.seed_corpus import load_seed_corpus, seed_questions
from sandbox_jax.society import SocietyConfig, SocietyRunner
from sandbox_jax.society.memory import check_no_eviction
from sandbox_jax.society.questions import load_questions
from sandbox_jax.protocol.templates import templates_from_config


def society_config(section) -> SocietyConfig:
  """SocietyConfig from the run config's `society` section (keys named as SocietyConfig fields)."""
  values = dict(section)
  for key in ("rounds", "questions"):
    values.pop(key, None)
  names = {f.name for f in dataclasses.fields(SocietyConfig)}
  unknown = sorted(set(values) - names)
  if unknown:
    raise ValueError(f"config key society: unknown fields {unknown}; known: {sorted(names | {'rounds', 'questions'})}")
  values["templates"] = templates_from_config(values.get("templates"))
  values["worlds"] = tuple((str(v), int(s)) for v, s in values.get("worlds", (("all_good", 0),)))
  return SocietyConfig(**values)


def question_source(spec: str) -> list[str]:
  """'seed:train' / 'seed:heldout' (the project's own corpus) or a path to a question file."""
  if spec.startswith("seed:"):
    return seed_questions(spec.split(":", 1)[1])
  return load_questions(spec)


def seed_priors() -> dict:
  """Prior memories of each view from the seed corpus: (question, answer, rating)."""
  rated = {"good": [], "bad": []}
  for q in load_seed_corpus("train"):
    for a in q.answers:
      rated["good" if a.aligned else "bad"].append((q.question, a.text, a.rating))
  return rated


def run_simulation(section, agent_model, observer_model, tokenizer, workdir, seed: int, names: tuple[str, str]):
  cfg = society_config(section)
  if cfg.protocol == "official":
    check_no_eviction(cfg.memory_capacity, cfg.memory_seed_count, int(section.rounds))
  runner = SocietyRunner(cfg, agent_model, observer_model, tokenizer, question_source(section.questions), seed_priors(),
                         workdir, seed=seed, agent_name=names[0], observer_name=names[1])
  return runner.run(int(section.rounds))
