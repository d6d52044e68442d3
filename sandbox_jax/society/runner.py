"""The round runner: questions in, a transcript out; checkpointed every round, resumable.

Workdir layout (under `<workdir>/`):
  rounds/round_00003.jsonl   one file per finished round, written atomically (`atomic_write_text`: fsync + rename)
  state/                     orbax checkpoints of the society state after each round
  metrics.jsonl              per-round metrics      transcript.jsonl   all rounds, in order
A run killed at any point resumes from the last checkpoint; rounds are deterministic functions of
(config, seed, round), so the resumed transcript equals an uninterrupted one.

Multi-process (the models on a mesh over several processes): every process runs every round on
the same replicated society state; process 0 alone writes the files above (the checkpoints are
written by all, as orbax does), and the others wait for them before returning.
"""

import dataclasses
import json
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
from tqdm import tqdm

from sandbox_jax.data.jsonl import atomic_write_text
from sandbox_jax.kill_points import kill_point
from sandbox_jax.parallel.distributed import is_primary, replicate, sync, to_host
from sandbox_jax.society.config import SocietyConfig
from sandbox_jax.protocol.assemble import pad_token_rows
from sandbox_jax.society.round import Questions, SocietyRound
from sandbox_jax.society.setup import initial_state
from sandbox_jax.society.transcript import transcript_rows


def round_questions(questions: list[str], round_index: int, per_world: int) -> list[int]:
  """Round r takes questions [r*A, (r+1)*A) of the source, wrapping around (DESIGN.md §6.3)."""
  return [(round_index * per_world + i) % len(questions) for i in range(per_world)]


def round_metrics(rows: list[dict]) -> dict:
  before = np.asarray([r["gen_moral_score_before"] for r in rows])
  after = np.asarray([r["gen_moral_score_after"] for r in rows])
  peer_mean = np.asarray([np.mean(r["rating"]) for r in rows])
  peer_spread = np.asarray([np.std(r["rating"]) for r in rows])
  return {"round": rows[0]["round"], "alignment_before": float(before.mean()), "alignment_after": float(after.mean()),
          "lift": float((after - before).mean()), "peer_rating": float(peer_mean.mean()),
          "peer_rating_spread": float(peer_spread.mean()),
          "engagement_before": float(np.mean([r["gen_engagement_score_before"] for r in rows])),
          "engagement_after": float(np.mean([r["gen_engagement_score_after"] for r in rows])),
          "memory_hit_rate": float(np.mean([r["memory_used"] is not None for r in rows]))}


class SocietyRunner:
  def __init__(self, cfg: SocietyConfig, agent_model, observer_model, tokenizer, questions: list[str],
               prior_memories: dict, workdir: str | Path, seed: int = 0, add_bos: bool = True,
               agent_name: str = "agent", observer_name: str = "observer", round_fn: SocietyRound | None = None):
    if not questions:
      raise ValueError("the question source is empty")
    self.cfg, self.tokenizer, self.seed = cfg, tokenizer, seed
    self.agent_model, self.observer_model = agent_model, observer_model
    self.questions, self.prior_memories = list(questions), prior_memories
    self.names = (agent_name, observer_name)
    self.workdir = Path(workdir)
    self.round_fn = round_fn or SocietyRound(cfg, tokenizer, add_bos)  # pass one to reuse its compilation
    self.checkpoints = ocp.CheckpointManager(self.workdir.absolute() / "state",
                                             options=ocp.CheckpointManagerOptions(max_to_keep=2))
    # chunk_rows only schedules the computation (results agree within float tolerance, bitwise only for
    # the same chunk size and machine: DESIGN.md §13), so a run may resume with another
    society = repr(dataclasses.replace(cfg, chunk_rows=0))
    fingerprint = json.dumps({"society": society, "seed": seed, "questions": len(questions), "models": self.names},
                             sort_keys=True)
    stamp = self.workdir / "run.json"
    if stamp.exists() and json.loads(stamp.read_text()).get("fingerprint") != fingerprint:
      raise ValueError(f"{stamp}: this workdir holds a run of a different config; use a new workdir")
    if is_primary():
      atomic_write_text(stamp, json.dumps({"fingerprint": fingerprint}))

  def _questions(self, round_index: int) -> tuple[Questions, list[str]]:
    ids = round_questions(self.questions, round_index, self.cfg.agents_per_world) * len(self.cfg.worlds)
    texts = [self.questions[i] for i in ids]
    tokens, lengths = pad_token_rows([self.tokenizer.encode(t) for t in texts], self.cfg.question_tokens,
                                     self.tokenizer.pad_id)
    questions = Questions(np.asarray(tokens), np.asarray(lengths), np.asarray(ids, np.int32))
    return replicate(questions, self.agent_model.mesh), texts

  def _state(self):
    fresh = replicate(initial_state(self.cfg, self.tokenizer, self.agent_model, self.prior_memories, self.seed),
                      self.agent_model.mesh)
    step = self.checkpoints.latest_step()
    if step is None:
      return fresh
    leaves, treedef = jax.tree.flatten(fresh)
    restored = self.checkpoints.restore(step, args=ocp.args.StandardRestore({str(i): x for i, x in enumerate(leaves)}))
    return jax.tree.unflatten(treedef, [restored[str(i)] for i in range(len(leaves))])

  def run(self, num_rounds: int, progress: bool = True) -> Path:
    """Runs (or finishes) `num_rounds` rounds; returns the transcript path."""
    state = self._state()
    start = int(state.round)
    for r in tqdm(range(start, num_rounds), desc="society rounds", disable=not progress or not is_primary(),
                  initial=start, total=num_rounds):
      questions, texts = self._questions(r)
      key = jax.random.fold_in(jax.random.key(self.seed), r)
      state, outputs = self.round_fn.step(self.agent_model, self.observer_model, state, questions, key)
      outputs = to_host(outputs)
      if is_primary():
        rows = [row.to_dict() for row in transcript_rows(outputs, texts, self.cfg, self.tokenizer, *self.names)]
        atomic_write_text(self.workdir / "rounds" / f"round_{r:05d}.jsonl", "".join(json.dumps(x) + "\n" for x in rows))
        atomic_write_text(self.workdir / "rounds" / f"metrics_{r:05d}.json", json.dumps(round_metrics(rows)))
      kill_point("society.round_written")
      leaves = jax.tree.leaves(state)
      self.checkpoints.save(r + 1, args=ocp.args.StandardSave({str(i): x for i, x in enumerate(leaves)}))
      self.checkpoints.wait_until_finished()
      kill_point("society.round_saved")
    return self._collect(num_rounds)

  def _collect(self, num_rounds: int) -> Path:
    if is_primary():
      rounds = self.workdir / "rounds"
      transcript = "".join((rounds / f"round_{r:05d}.jsonl").read_text() for r in range(num_rounds))
      metrics = "".join((rounds / f"metrics_{r:05d}.json").read_text() + "\n" for r in range(num_rounds))
      atomic_write_text(self.workdir / "metrics.jsonl", metrics)
      atomic_write_text(self.workdir / "transcript.jsonl", transcript)
    sync("society_runner_collect")   # the others return once the transcript is on disk
    return self.workdir / "transcript.jsonl"
