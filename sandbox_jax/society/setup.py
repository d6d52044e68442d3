"""The initial society state: labels from each world's view, memories seeded with prior Q/A pairs."""

import jax
import jax.numpy as jnp
import numpy as np

from sandbox_jax.parallel.distributed import to_host
from sandbox_jax.protocol.assemble import pad_token_rows
from sandbox_jax.society import memory as mem
from sandbox_jax.society.config import SocietyConfig
from sandbox_jax.society.round import SocietyState, embed_questions
from sandbox_jax.society.world import initial_labels

_embed = jax.jit(embed_questions)   # one compiled call, not the model op by op


def initial_state(cfg: SocietyConfig, tokenizer, agent_model, prior_memories: dict[str, list[tuple[str, str]]],
                  seed: int = 0) -> SocietyState:
  """Each agent's memory gets `memory_seed_count` (question, answer) pairs of its view, drawn per agent.

  `prior_memories` maps 'good' / 'bad' to (question, answer, rating) or (question, answer) pairs.
  """
  for label in ("good", "bad"):
    if not prior_memories.get(label):
      raise ValueError(f"prior memories for world view label {label!r} are empty")
  labels = np.concatenate([initial_labels(view, cfg.grid_size, world_seed) for view, world_seed in cfg.worlds])
  count = min(cfg.memory_seed_count, cfg.memory_capacity)
  rng = np.random.default_rng(seed)
  q_rows, a_rows, importance, qids = [], [], [], []
  for agent, good in enumerate(labels):
    pool = prior_memories["good" if good else "bad"]
    picks = rng.choice(len(pool), size=min(count, len(pool)), replace=False)
    for p in picks:
      q, a = pool[p][0], pool[p][1]
      q_rows.append(tokenizer.encode(q))
      a_rows.append(tokenizer.encode(a))
      importance.append(float(pool[p][2]) if len(pool[p]) > 2 else 4.0)
      qids.append(-2 - int(p))  # negative ids: seeded questions never equal a source question id
  per_agent = min(count, min(len(prior_memories["good"]), len(prior_memories["bad"])))
  q_tok, q_len = pad_token_rows(q_rows, cfg.question_tokens, tokenizer.pad_id)
  a_tok, a_len = pad_token_rows(a_rows, cfg.answer_tokens, tokenizer.pad_id)
  emb = np.concatenate([to_host(_embed(agent_model, jnp.asarray(q_tok[i:i + 512]), jnp.asarray(q_len[i:i + 512])))
                        for i in range(0, len(q_rows), 512)])
  n, c = len(labels), cfg.memory_capacity
  memory = mem.empty_memory(n, c, cfg.question_tokens, cfg.answer_tokens, emb.shape[1], tokenizer.pad_id)
  shape = lambda x: np.asarray(x).reshape((n, per_agent) + np.asarray(x).shape[1:])
  pad_c = lambda x, fill: np.concatenate([shape(x), np.full((n, c - per_agent) + shape(x).shape[2:], fill,
                                                            shape(x).dtype)], axis=1)
  memory = mem.Memory(
      jnp.asarray(pad_c(q_tok, tokenizer.pad_id)), jnp.asarray(pad_c(q_len, 0)),
      jnp.asarray(pad_c(a_tok, tokenizer.pad_id)), jnp.asarray(pad_c(a_len, 0)),
      jnp.asarray(pad_c(emb.astype(np.float32), 0.0)), jnp.asarray(pad_c(np.asarray(qids, np.int32), -1)),
      jnp.asarray(pad_c(np.full(len(qids), -1, np.int32), -1)),
      jnp.asarray(pad_c(np.asarray(importance, np.float32), 0.0)),
      jnp.full((n,), per_agent % c, jnp.int32))
  return SocietyState(memory, jnp.zeros((), jnp.int32), jnp.asarray(labels))
