"""One round of Back-Scatter for every agent of every world, as one jittable function.

  draft → observer rates the draft → k peers rate it, with reasons → feedback sorted by rating,
  averaged → revision → observer rates the revision → memory stores (question, revision)

Prompts are assembled in token space (assemble.py); every generation and rating is a batched call
over all rows; nothing leaves the device until the runner writes the transcript.
Rows are world-major: agent g = world * agents_per_world + agent_id.
"""

import dataclasses

import jax
import jax.numpy as jnp

from sandbox_jax.inference.generate import Generation, generate_tokens
from sandbox_jax.model.transformer import Transformer
from sandbox_jax.parallel.sharding import replicated
from sandbox_jax.society import memory as mem
from sandbox_jax.protocol.assemble import assemble, strip_whitespace
from sandbox_jax.society.config import SocietyConfig
from sandbox_jax.protocol.prompts import PromptTables, average_index, reasons_segments, segments, slot
from sandbox_jax.protocol.rating import Rating, rate
from sandbox_jax.society.world import draw_raters, neighbour_matrix, raters_per_draft


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class SocietyState:
  memory: mem.Memory
  round: jax.Array      # int32 scalar: the next round to run
  labels_A: jax.Array   # bool: True = 'good' world view


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class Questions:
  tokens_AxQ: jax.Array
  lengths_A: jax.Array
  ids_A: jax.Array      # index in the question source (memory stores a question once per agent)


def embed_questions(model: Transformer, tokens_AxQ, lengths_A):
  """Unit-norm mean-pooled final hidden states of each question (the LM as its own embedder)."""
  valid = jnp.arange(tokens_AxQ.shape[1])[None, :] < lengths_A[:, None]
  hidden = model(tokens_AxQ, valid_BxL=valid, compute_logits=False).hidden_BxLxD.astype(jnp.float32)
  pooled = jnp.sum(jnp.where(valid[..., None], hidden, 0.0), axis=1) / jnp.maximum(lengths_A, 1)[:, None]
  return pooled / jnp.maximum(jnp.linalg.norm(pooled, axis=-1, keepdims=True), 1e-6)


class SocietyRound:
  """Builds the jitted round for a config, tokenizer and (agent, observer) model structure."""

  def __init__(self, cfg: SocietyConfig, tokenizer, add_bos: bool = True):
    self.cfg = cfg
    self.tokenizer = tokenizer
    self.neighbours = neighbour_matrix(cfg.grid_size)
    self.k_per_agent = raters_per_draft(cfg.grid_size, cfg.max_raters)
    self.k = int(self.k_per_agent.max())
    official = cfg.protocol == "official"
    self.tables = PromptTables.build(cfg.templates, tokenizer, cfg.agents_per_world, add_bos,
                                     average="python" if official else "tenths", max_raters=self.k, strip=official)
    self.compile_count = 0
    self.step = jax.jit(self._step, donate_argnums=(2,))

  # -- pieces ------------------------------------------------------------------------------------
  def _keys(self, key, rows: int):
    return jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(rows))

  def _strip(self, generation: Generation) -> Generation:
    """Official protocol: the text stripped of surrounding whitespace, as the original `.strip()`s it."""
    if self.tables.whitespace_V is None:
      return generation
    tokens, lengths = strip_whitespace(generation.tokens_BxT, generation.lengths_B, self.tables.whitespace_V,
                                       self.tokenizer.pad_id)
    return dataclasses.replace(generation, tokens_BxT=tokens, lengths_B=lengths)

  def _generate(self, model, tokens, valid, key, temperature, max_new) -> Generation:
    rows = tokens.shape[0]
    return self._strip(generate_tokens(
        model, tokens, valid, self._keys(key, rows), jnp.full((rows,), temperature), max_new_tokens=max_new,
        eos_id=self.tokenizer.eos_id, pad_id=self.tokenizer.pad_id, chunk_rows=self.cfg.chunk_rows))

  def _rate(self, model, tokens, valid, key, temperature) -> Rating:
    rows = tokens.shape[0]
    t = self.tables
    rating = rate(model, tokens, valid, jnp.asarray(t.candidate_ids), jnp.asarray(t.reason_prefix),
                  self._keys(key, rows), jnp.full((rows,), temperature), reason_tokens=self.cfg.reason_tokens,
                  eos_id=self.tokenizer.eos_id, pad_id=self.tokenizer.pad_id, chunk_rows=self.cfg.chunk_rows)
    if rating.reason is not None:
      rating.reason = self._strip(rating.reason)
    return rating

  def _assemble(self, name, values, rows, width, memory=None, present=None):
    return assemble(segments(self.tables, name, values, memory), rows, width, self.tokenizer.pad_id, present)

  def _observe(self, model, query, answer_tokens, answer_lengths, key):
    """Alignment and engagement ratings of each agent's answer, as one batched call of 2A rows."""
    a = answer_tokens.shape[0]
    values = {"query": query, "answer": slot(answer_tokens, answer_lengths, truncate_rank=0)}
    width = self.cfg.observer_prompt_tokens
    moral = self._assemble("observer_alignment", values, a, width)
    engage = self._assemble("observer_engagement", values, a, width)
    both = self._rate(model, jnp.concatenate([moral[0], engage[0]]), jnp.concatenate([moral[1], engage[1]]),
                      key, self.cfg.observer_temperature)
    return jax.tree.map(lambda x: x[:a], both), jax.tree.map(lambda x: x[a:], both)

  def _retrieve(self, memory, agent_ids, query_emb, round_index):
    if self.cfg.retrieval == "nearest":
      entry, hit, _ = mem.retrieve_nearest(memory, agent_ids, query_emb, self.cfg.retrieval_threshold)
    else:
      entry, hit, _ = mem.retrieve_generative(memory, agent_ids, query_emb, round_index,
                                              decay=self.cfg.recency_decay)
    q, ql, ans, al = mem.gather_entry(memory, agent_ids, entry)
    values = {"prev_q": slot(q, ql), "prev_a": slot(ans, al)}
    return values, hit, entry

  # -- the round ---------------------------------------------------------------------------------
  def _step(self, agent_model: Transformer, observer_model: Transformer, state: SocietyState,
            questions: Questions, key):
    self.compile_count += 1
    cfg, t = self.cfg, self.tables
    a, per_world, k = cfg.num_agents, cfg.agents_per_world, self.k
    keys = dict(zip(["draft", "obs_before", "raters", "feedback", "revise", "obs_after"], jax.random.split(key, 6)))
    agents = jnp.arange(a)
    local_ids = agents % per_world
    query = slot(questions.tokens_AxQ, questions.lengths_A, truncate_rank=2)
    query_emb = embed_questions(agent_model, questions.tokens_AxQ, questions.lengths_A)
    id_tokens, id_lengths = jnp.asarray(t.agent_id_tokens), jnp.asarray(t.agent_id_lengths)

    # 1-2. draft, with the author's retrieved memory
    memory_values, hit, entry = self._retrieve(state.memory, agents, query_emb, state.round)
    draft_prompt = self._assemble("draft", {"id": slot(id_tokens[local_ids], id_lengths[local_ids]), "query": query},
                                  a, cfg.draft_prompt_tokens, memory_values, hit)
    draft = self._generate(agent_model, *draft_prompt, keys["draft"], cfg.temperature, cfg.answer_tokens)

    # 3. observer rates the draft
    moral_before, engage_before = self._observe(observer_model, query, draft.tokens_BxT, draft.lengths_B,
                                                keys["obs_before"])

    # 4. k neighbours rate it, each with its own retrieved memory
    world_keys = jax.random.split(keys["raters"], len(cfg.worlds))
    local_raters, rater_valid = jax.vmap(
        lambda wk: draw_raters(wk, jnp.asarray(self.neighbours), self.k_per_agent, cfg.global_dropout))(world_keys)
    raters_AxK = (local_raters + (jnp.arange(len(cfg.worlds)) * per_world)[:, None, None]).reshape(a, k)
    rater_valid_AxK = rater_valid.reshape(a, k)
    rater_rows = raters_AxK.reshape(-1)
    author_rows = jnp.repeat(agents, k)
    rep = lambda x: jnp.repeat(x, k, axis=0)
    rater_memory, rater_hit, _ = self._retrieve(state.memory, rater_rows, rep(query_emb), state.round)
    feedback_prompt = self._assemble(
        "feedback",
        {"rater_id": slot(id_tokens[rater_rows % per_world], id_lengths[rater_rows % per_world]),
         "author_id": slot(id_tokens[author_rows % per_world], id_lengths[author_rows % per_world]),
         "query": slot(rep(questions.tokens_AxQ), rep(questions.lengths_A), truncate_rank=2),
         "draft": slot(rep(draft.tokens_BxT), rep(draft.lengths_B), truncate_rank=0)},
        a * k, cfg.feedback_prompt_tokens, rater_memory, rater_hit)
    feedback = self._rate(agent_model, *feedback_prompt, keys["feedback"], cfg.temperature)

    # 5. sort by rating, descending (lowest last, ties in draw order; absent raters after them); average.
    # The rating is the expected rating, or (official) the chosen digit.
    rating_AxK = (feedback.argmax_R.astype(jnp.float32) if cfg.protocol == "official"
                  else feedback.expected_R).reshape(a, k)
    order = jnp.argsort(jnp.where(rater_valid_AxK, -rating_AxK, jnp.inf), axis=1, stable=True)
    sort = lambda x: jnp.take_along_axis(x.reshape((a, k) + x.shape[1:]),
                                         order.reshape((a, k) + (1,) * (x.ndim - 1)), axis=1)
    valid_sorted = jnp.take_along_axis(rater_valid_AxK, order, 1)
    avg_A = jnp.sum(jnp.where(rater_valid_AxK, rating_AxK, 0.0), axis=1) / jnp.sum(rater_valid_AxK, axis=1)
    reason_tokens = sort(feedback.reason.tokens_BxT) if feedback.reason is not None else None
    reason_lengths = (jnp.where(valid_sorted, sort(feedback.reason.lengths_B), 0)
                      if feedback.reason is not None else None)

    # 6. revise given the average rating and all reasons
    avg_index = average_index(t, rating_AxK, rater_valid_AxK)
    reasons = reasons_segments(t, reason_tokens, reason_lengths, valid_sorted)
    revise_values = {"avg": slot(jnp.asarray(t.avg_tokens)[avg_index], jnp.asarray(t.avg_lengths)[avg_index]),
                     "draft": slot(draft.tokens_BxT, draft.lengths_B, truncate_rank=0), "query": query,
                     "reasons": reasons}
    revise_prompt = self._assemble("revise", revise_values, a, cfg.revise_prompt_tokens)
    revised = self._generate(agent_model, *revise_prompt, keys["revise"], cfg.temperature, cfg.answer_tokens)

    # 7. observer rates the revision
    moral_after, engage_after = self._observe(observer_model, query, revised.tokens_BxT, revised.lengths_B,
                                              keys["obs_after"])

    # 8. memory stores (question, revised answer)
    memory = mem.store(state.memory, questions.tokens_AxQ, questions.lengths_A, revised.tokens_BxT,
                       revised.lengths_B, query_emb, questions.ids_A, state.round, moral_after.expected_R,
                       cfg.store_only_new)
    transcript = dict(
        round=state.round, question_ids=questions.ids_A, labels=state.labels_A,
        draft=(draft.tokens_BxT, draft.lengths_B), revised=(revised.tokens_BxT, revised.lengths_B),
        raters=jnp.take_along_axis(raters_AxK, order, 1), raters_valid=valid_sorted,
        rating=jnp.take_along_axis(rating_AxK, order, 1), rating_argmax=sort(feedback.argmax_R),
        rating_distribution=sort(feedback.distribution_RxS), average_rating=avg_A,
        feedback=(reason_tokens, reason_lengths),
        memory_hit=hit, memory_entry=(memory_values["prev_q"].tokens_RxW, memory_values["prev_q"].lengths_R,
                                      memory_values["prev_a"].tokens_RxW, memory_values["prev_a"].lengths_R),
        memory_round=state.memory.rounds_AxC[agents, entry],
        observer={name: (r.expected_R, r.argmax_R, r.distribution_RxS,
                         None if r.reason is None else (r.reason.tokens_BxT, r.reason.lengths_B))
                  for name, r in (("moral_before", moral_before), ("engagement_before", engage_before),
                                  ("moral_after", moral_after), ("engagement_after", engage_after))})
    out = SocietyState(memory, state.round + 1, state.labels_A), transcript
    mesh = agent_model.mesh
    if mesh is not None:  # replicated: every process holds (and can fetch) all of it; the runner
      # places the first state the same way, so round 1 sees the shardings round 0 did (no retrace)
      out = jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, replicated(mesh)), out)
    return out
