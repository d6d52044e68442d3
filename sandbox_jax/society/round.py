"""One round of Back-Scatter for every agent of every world, as one jittable function.

  draft → observe (the observer rates the draft) → peer_rate (k peers rate it, with reasons) →
  aggregate (sorted by rating, averaged) → revise → observe the revision → remember (question, revision)

Each step is a public method over any number of rows; `_step` is their sequence over the population
and returns the new state and the typed `RoundOutputs` (protocol/outputs.py).

Prompts are assembled in token space (assemble.py); every generation and rating is a batched call
over all rows; nothing leaves the device until the runner writes the transcript.
Rows are world-major: agent g = world * agents_per_world + agent_id.
"""

import dataclasses

import jax
import jax.numpy as jnp

from sandbox_jax.inference.generate import Generation, generate_tokens
from sandbox_jax.model.tokenizer import stop_ids_of
from sandbox_jax.model.transformer import Transformer
from sandbox_jax.parallel.sharding import replicated
from sandbox_jax.society import memory as mem
from sandbox_jax.protocol.assemble import assemble, strip_whitespace
from sandbox_jax.society.config import SocietyConfig
from sandbox_jax.protocol.chat import chat_protocol
from sandbox_jax.protocol.prompts import PromptTables, average_index, reasons_segments, segments, slot
from sandbox_jax.protocol.outputs import Feedback, MemoryUsed, RoundOutputs
from sandbox_jax.protocol.rating import Rating, rate
from sandbox_jax.society.world import draw_raters, neighbour_matrix, rater_plan


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
    # raters per draft and how many of them are local (society.global_local_share; config errors here)
    self.k_per_agent, self.local_per_agent = rater_plan(cfg.grid_size, cfg.max_raters, cfg.global_dropout,
                                                        cfg.global_local_share)
    self.k = int(self.k_per_agent.max())
    official = cfg.protocol == "official"
    # chat formats (DESIGN.md §6.5a): the templates as chat prompts, which write their own BOS
    self.chat = chat_protocol(cfg.templates, tokenizer, cfg.chat, cfg.chat_agent_system, cfg.chat_observer_system)
    templates = cfg.templates if self.chat is None else self.chat.templates
    add_bos = add_bos and self.chat is None
    self.stop_ids = stop_ids_of(tokenizer)  # EOS and the chat template's end-of-turn token
    if self.chat is not None and self.chat.end_of_turn_id is not None and self.chat.end_of_turn_id not in self.stop_ids:
      self.stop_ids = (*self.stop_ids, self.chat.end_of_turn_id)
    self.tables = PromptTables.build(templates, tokenizer, cfg.agents_per_world, add_bos,
                                     average="python" if official else "tenths", max_raters=self.k, strip=official)
    self.compile_count = 0
    self.step = jax.jit(self._step, donate_argnums=(2,))

  # -- the protocol's steps (public: the round is their sequence; benchmarks/society.py runs them agent
  # by agent). Rows are independent; `keys_R` holds each row's PRNG key.
  def row_keys(self, key, rows: int, offset: int = 0):
    """Row i's key is fold_in(key, offset + i)."""
    return jax.vmap(lambda i: jax.random.fold_in(key, i))(offset + jnp.arange(rows))

  def _strip(self, generation: Generation) -> Generation:
    """Official protocol: the text stripped of surrounding whitespace, as the original `.strip()`s it."""
    if self.tables.whitespace_V is None:
      return generation
    tokens, lengths = strip_whitespace(generation.tokens_BxT, generation.lengths_B, self.tables.whitespace_V,
                                       self.tokenizer.pad_id)
    return dataclasses.replace(generation, tokens_BxT=tokens, lengths_B=lengths)

  def _generate(self, model, prompt, keys_R, temperature, max_new) -> Generation:
    tokens, valid = prompt
    rows = tokens.shape[0]
    return self._strip(generate_tokens(
        model, tokens, valid, keys_R, jnp.full((rows,), temperature), max_new_tokens=max_new,
        eos_id=self.stop_ids, pad_id=self.tokenizer.pad_id, chunk_rows=self.cfg.chunk_rows))

  def _rate(self, model, prompt, keys_R, temperature) -> Rating:
    tokens, valid = prompt
    t = self.tables
    rating = rate(model, tokens, valid, jnp.asarray(t.candidate_ids), jnp.asarray(t.reason_prefix), keys_R,
                  jnp.full((tokens.shape[0],), temperature), reason_tokens=self.cfg.reason_tokens,
                  eos_id=self.stop_ids, pad_id=self.tokenizer.pad_id, chunk_rows=self.cfg.chunk_rows)
    if rating.reason is not None:
      rating.reason = self._strip(rating.reason)
    return rating

  def _assemble(self, name, values, rows, width, memory=None, present=None):
    return assemble(segments(self.tables, name, values, memory), rows, width, self.tokenizer.pad_id, present)

  def _ids(self, agents_R):
    local_R = agents_R % self.cfg.agents_per_world
    return slot(jnp.asarray(self.tables.agent_id_tokens)[local_R], jnp.asarray(self.tables.agent_id_lengths)[local_R])

  def retrieve(self, memory, agents_R, query_emb_RxD, round_index):
    """Each row's retrieved memory entry of agent `agents_R`: (slot values, hit_R, entry_R)."""
    if self.cfg.retrieval == "nearest":
      entry, hit, _ = mem.retrieve_nearest(memory, agents_R, query_emb_RxD, self.cfg.retrieval_threshold)
    else:
      entry, hit, _ = mem.retrieve_generative(memory, agents_R, query_emb_RxD, round_index,
                                              decay=self.cfg.recency_decay)
    q, ql, ans, al = mem.gather_entry(memory, agents_R, entry)
    return {"prev_q": slot(q, ql), "prev_a": slot(ans, al)}, hit, entry

  def draft(self, model, memory, round_index, agents_R, query_RxQ, query_lengths_R, query_emb_RxD, keys_R):
    """Steps 1-2: each agent answers its question, with its retrieved memory in the prompt.
    Returns (draft, MemoryUsed)."""
    values, hit, entry = self.retrieve(memory, agents_R, query_emb_RxD, round_index)
    query = slot(query_RxQ, query_lengths_R, truncate_rank=2)
    prompt = self._assemble("draft", {"id": self._ids(agents_R), "query": query}, agents_R.shape[0],
                            self.cfg.draft_prompt_tokens, values, hit)
    used = MemoryUsed(hit, values["prev_q"].tokens_RxW, values["prev_q"].lengths_R, values["prev_a"].tokens_RxW,
                      values["prev_a"].lengths_R, memory.rounds_AxC[agents_R, entry])
    return self._generate(model, prompt, keys_R, self.cfg.temperature, self.cfg.answer_tokens), used

  def observer_prompt(self, name, query_RxQ, query_lengths_R, answer: Generation):
    values = {"query": slot(query_RxQ, query_lengths_R, truncate_rank=2),
              "answer": slot(answer.tokens_BxT, answer.lengths_B, truncate_rank=0)}
    return self._assemble(name, values, answer.tokens_BxT.shape[0], self.cfg.observer_prompt_tokens)

  def observer_rating(self, model, name, query_RxQ, query_lengths_R, answer: Generation, keys_R) -> Rating:
    """Steps 3 and 7, one aspect ('observer_alignment' | 'observer_engagement')."""
    return self._rate(model, self.observer_prompt(name, query_RxQ, query_lengths_R, answer), keys_R,
                      self.cfg.observer_temperature)

  def observe(self, model, query_RxQ, query_lengths_R, answer: Generation, key) -> tuple[Rating, Rating]:
    """Steps 3 and 7: alignment and engagement of each answer, one batched call of 2R rows
    (alignment row i has key fold_in(key, i), engagement row i fold_in(key, R + i))."""
    r = answer.tokens_BxT.shape[0]
    moral = self.observer_prompt("observer_alignment", query_RxQ, query_lengths_R, answer)
    engage = self.observer_prompt("observer_engagement", query_RxQ, query_lengths_R, answer)
    both = self._rate(model, (jnp.concatenate([moral[0], engage[0]]), jnp.concatenate([moral[1], engage[1]])),
                      self.row_keys(key, 2 * r), self.cfg.observer_temperature)
    return jax.tree.map(lambda x: x[:r], both), jax.tree.map(lambda x: x[r:], both)

  def draw_raters(self, key):
    """Step 4's draw: (A, K) global rater ids and their validity, per world, unsorted."""
    cfg, per_world, k = self.cfg, self.cfg.agents_per_world, self.k
    world_keys = jax.random.split(key, len(cfg.worlds))
    local_A = None if cfg.global_dropout is None else self.local_per_agent
    local, valid = jax.vmap(lambda wk: draw_raters(wk, jnp.asarray(self.neighbours), self.k_per_agent,
                                                   cfg.global_dropout, local_A=local_A))(world_keys)
    raters = (local + (jnp.arange(len(cfg.worlds)) * per_world)[:, None, None]).reshape(-1, k)
    return raters, valid.reshape(-1, k)

  def peer_rate(self, model, memory, round_index, raters_R, authors_R, query_RxQ, query_lengths_R, query_emb_RxD,
                draft: Generation, keys_R) -> Rating:
    """Step 4: rater `raters_R` rates author `authors_R`'s draft, with the rater's own retrieved memory."""
    values, hit, _ = self.retrieve(memory, raters_R, query_emb_RxD, round_index)
    prompt = self._assemble(
        "feedback", {"rater_id": self._ids(raters_R), "author_id": self._ids(authors_R),
                     "query": slot(query_RxQ, query_lengths_R, truncate_rank=2),
                     "draft": slot(draft.tokens_BxT, draft.lengths_B, truncate_rank=0)},
        raters_R.shape[0], self.cfg.feedback_prompt_tokens, values, hit)
    return self._rate(model, prompt, keys_R, self.cfg.temperature)

  def aggregate(self, ratings: Rating, raters_AxK, valid_AxK) -> Feedback:
    """Step 5: each draft's A*K peer ratings sorted by rating, descending (lowest last, ties in draw
    order, absent raters after them), and averaged. The rating is the expected rating, or (official)
    the chosen digit."""
    a, k = raters_AxK.shape
    rating_AxK = (ratings.argmax_R.astype(jnp.float32) if self.cfg.protocol == "official"
                  else ratings.expected_R).reshape(a, k)
    order = jnp.argsort(jnp.where(valid_AxK, -rating_AxK, jnp.inf), axis=1, stable=True)
    sort = lambda x: jnp.take_along_axis(x.reshape((a, k) + x.shape[1:]),
                                         order.reshape((a, k) + (1,) * (x.ndim - 1)), axis=1)
    valid_sorted = jnp.take_along_axis(valid_AxK, order, 1)
    average_A = jnp.sum(jnp.where(valid_AxK, rating_AxK, 0.0), axis=1) / jnp.sum(valid_AxK, axis=1)
    reason = ratings.reason
    return Feedback(jnp.take_along_axis(raters_AxK, order, 1), valid_sorted, jnp.take_along_axis(rating_AxK, order, 1),
                    sort(ratings.argmax_R), sort(ratings.distribution_RxS), average_A,
                    None if reason is None else sort(reason.tokens_BxT),
                    None if reason is None else jnp.where(valid_sorted, sort(reason.lengths_B), 0))

  def revise(self, model, query_RxQ, query_lengths_R, draft: Generation, feedback: Feedback, keys_R) -> Generation:
    """Step 6: each agent rewrites its draft given the average rating and all reasons."""
    t = self.tables
    index = average_index(t, feedback.average_A, feedback.rating_AxK, feedback.valid_AxK)
    values = {"avg": slot(jnp.asarray(t.avg_tokens)[index], jnp.asarray(t.avg_lengths)[index]),
              "draft": slot(draft.tokens_BxT, draft.lengths_B, truncate_rank=0),
              "query": slot(query_RxQ, query_lengths_R, truncate_rank=2),
              "reasons": reasons_segments(t, feedback.reason_tokens_AxKxT, feedback.reason_lengths_AxK,
                                          feedback.valid_AxK)}
    prompt = self._assemble("revise", values, query_RxQ.shape[0], self.cfg.revise_prompt_tokens)
    return self._generate(model, prompt, keys_R, self.cfg.temperature, self.cfg.answer_tokens)

  def remember(self, state: SocietyState, questions: Questions, revised: Generation, query_emb_AxD,
               importance_A) -> SocietyState:
    """Step 8: memory stores (question, revised answer); the round counter advances."""
    memory = mem.store(state.memory, questions.tokens_AxQ, questions.lengths_A, revised.tokens_BxT,
                       revised.lengths_B, query_emb_AxD, questions.ids_A, state.round, importance_A,
                       self.cfg.store_only_new)
    return SocietyState(memory, state.round + 1, state.labels_A)

  # -- the round ---------------------------------------------------------------------------------
  def _step(self, agent_model: Transformer, observer_model: Transformer, state: SocietyState,
            questions: Questions, key) -> tuple[SocietyState, RoundOutputs]:
    self.compile_count += 1
    a, k = self.cfg.num_agents, self.k
    keys = dict(zip(["draft", "obs_before", "raters", "feedback", "revise", "obs_after"], jax.random.split(key, 6)))
    agents = jnp.arange(a)
    q, ql = questions.tokens_AxQ, questions.lengths_A
    query_emb = embed_questions(agent_model, q, ql)
    draft, memory_used = self.draft(agent_model, state.memory, state.round, agents, q, ql, query_emb,
                                    self.row_keys(keys["draft"], a))
    moral_before, engage_before = self.observe(observer_model, q, ql, draft, keys["obs_before"])
    raters_AxK, valid_AxK = self.draw_raters(keys["raters"])
    rep = lambda x: jnp.repeat(x, k, axis=0)
    ratings = self.peer_rate(agent_model, state.memory, state.round, raters_AxK.reshape(-1), rep(agents), rep(q),
                             rep(ql), rep(query_emb), jax.tree.map(rep, draft), self.row_keys(keys["feedback"], a * k))
    feedback = self.aggregate(ratings, raters_AxK, valid_AxK)
    revised = self.revise(agent_model, q, ql, draft, feedback, self.row_keys(keys["revise"], a))
    moral_after, engage_after = self.observe(observer_model, q, ql, revised, keys["obs_after"])
    new_state = self.remember(state, questions, revised, query_emb, moral_after.expected_R)
    outputs = RoundOutputs(state.round, questions.ids_A, state.labels_A, draft, revised, feedback, memory_used,
                           moral_before, engage_before, moral_after, engage_after)
    out = new_state, outputs
    mesh = agent_model.mesh
    if mesh is not None:  # replicated: every process holds (and can fetch) all of it; the runner
      # places the first state the same way, so round 1 sees the shardings round 0 did (no retrace)
      out = jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, replicated(mesh)), out)
    return out
