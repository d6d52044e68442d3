"""The Back-Scatter round: determinism, resume, one compiled call, the protocol in the program."""

import dataclasses
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sandbox_jax.model import ByteTokenizer, ModelConfig, create_model
from sandbox_jax.society import SocietyConfig, SocietyRound, SocietyRunner, round_questions
from sandbox_jax.data.jsonl import atomic_write_text
from sandbox_jax.protocol.templates import compact_templates

COMPACT = compact_templates()
CFG = SocietyConfig(grid_size=3, worlds=(("half_half", 0), ("all_bad", 1)), question_tokens=24, answer_tokens=6,
                    reason_tokens=3, draft_prompt_tokens=96, feedback_prompt_tokens=128, revise_prompt_tokens=128,
                    observer_prompt_tokens=80, memory_capacity=6, memory_seed_count=3, templates=COMPACT,
                    temperature=0.8)
QUESTIONS = ["How do I make friends?", "Should I lie to my boss?", "Is it ok to cheat on a test?",
             "Can I read my partner's messages?", "How do I apologise?"]
PRIORS = {"good": [("Should I lie to my boss?", "No, be honest.", 7), ("Is stealing ok?", "No.", 6),
                   ("How do I make friends?", "Be kind and listen.", 7)],
          "bad": [("Should I lie to my boss?", "Sure, lie.", 1), ("Is stealing ok?", "Yes.", 1),
                  ("How do I make friends?", "Buy them.", 2)]}


@pytest.fixture(scope="module")
def society():
  tokenizer = ByteTokenizer()
  model = create_model(ModelConfig(embed_dim=32, mlp_dim=64, num_layers=1, num_heads=2, num_kv_heads=1,
                                   max_positions=256), seed=0)
  return model, tokenizer, SocietyRound(CFG, tokenizer)


def _run(society, workdir, rounds, **kw):
  model, tokenizer, round_fn = society
  runner = SocietyRunner(CFG, model, model, tokenizer, QUESTIONS, PRIORS, workdir, seed=3, round_fn=round_fn,
                         agent_name="micro", observer_name="micro", **kw)
  return runner.run(rounds, progress=False)


@pytest.fixture(scope="module")
def reference(society, tmp_path_factory):
  return _run(society, tmp_path_factory.mktemp("ref"), 2).read_text()


def test_transcript_has_every_official_field(reference):
  rows = [json.loads(line) for line in reference.splitlines()]
  assert len(rows) == 2 * CFG.num_agents
  official = ["agent_id", "label", "iteration", "question", "draft_answer", "target_id", "feedback", "rating",
              "revised_answer", "gen_moral_score_before", "gen_moral_reason_before", "gen_moral_score_after",
              "gen_moral_reason_after", "gen_engagement_score_before", "gen_engagement_reason_before",
              "gen_engagement_score_after", "gen_engagement_reason_after"]
  ours = ["world", "seed", "round", "rating_distribution", "memory_used", "agent_model", "observer_model"]
  for row in rows:
    assert set(official + ours) <= set(row)
    assert row["rating"] == sorted(row["rating"], reverse=True)
    assert len(row["rating"]) == len(row["target_id"]) == len(row["feedback"])
    assert all(abs(sum(d) - 1) < 1e-3 for d in row["rating_distribution"])
    assert 1 <= row["gen_moral_score_after"] <= 7
  centre = [r for r in rows if r["agent_id"] == 4]
  assert all(len(r["target_id"]) == 4 for r in centre)            # 3x3 centre: 4 neighbours
  assert all(len(r["target_id"]) == 2 for r in rows if r["agent_id"] == 0)  # corner: 2
  assert {r["label"] for r in rows if r["world"] == "all_bad"} == {"bad"}
  assert rows[0]["question"] == QUESTIONS[0] and rows[CFG.agents_per_world]["question"] == QUESTIONS[0]


def test_same_config_and_seed_give_identical_transcript(society, reference, tmp_path):
  assert _run(society, tmp_path, 2).read_text() == reference


def test_resume_between_rounds(society, reference, tmp_path):
  _run(society, tmp_path, 1)
  assert _run(society, tmp_path, 2).read_text() == reference


def test_resume_after_a_kill_within_a_round(society, reference, tmp_path, monkeypatch):
  import sandbox_jax.society.runner as runner_module

  def dying_write(path, text):
    if Path(path).name == "round_00001.jsonl":
      raise KeyboardInterrupt("killed mid-round")
    atomic_write_text(path, text)

  monkeypatch.setattr(runner_module, "atomic_write_text", dying_write)
  with pytest.raises(KeyboardInterrupt):
    _run(society, tmp_path, 2)
  monkeypatch.undo()
  assert not (tmp_path / "rounds" / "round_00001.jsonl").exists()  # no partial rows
  assert _run(society, tmp_path, 2).read_text() == reference


def test_full_disk_while_writing_the_transcript_keeps_the_previous_one(society, reference, tmp_path, monkeypatch):
  """ENOSPC part-way through transcript.jsonl (tests.disk_full): the 1-round transcript stays whole, no
  temporary file is left, the error names the file; once there is room, the rerun finishes the run."""
  from tests.disk_full import fill_disk_on

  one_round = _run(society, tmp_path, 1).read_text()
  fill_disk_on(monkeypatch, "transcript.jsonl", room=1000)
  with pytest.raises(OSError, match=f"{tmp_path / 'transcript.jsonl'}: not written.*No space left on device"):
    _run(society, tmp_path, 2)
  monkeypatch.undo()
  assert (tmp_path / "transcript.jsonl").read_text() == one_round
  assert not list(tmp_path.rglob("*.tmp"))
  assert _run(society, tmp_path, 2).read_text() == reference


def _rows(text):
  return [json.loads(line) for line in text.splitlines()]


def _text_agreement(rows_a, rows_b) -> float:
  """Fraction of the generated characters (bytes: tokens of the byte tokenizer) that are identical,
  position for position, over drafts, revisions, peer reasons and observer reasons."""
  same = total = 0
  for a, b in zip(rows_a, rows_b, strict=True):
    texts = [(a["draft_answer"], b["draft_answer"]), (a["revised_answer"], b["revised_answer"])]
    texts += list(zip(a["feedback"], b["feedback"]))
    texts += [(a[k], b[k]) for k in a if k.startswith("gen_") and k.endswith(("reason_before", "reason_after"))]
    for x, y in texts:
      same += sum(p == q for p, q in zip(x, y))
      total += max(len(x), len(y))
  return same / max(total, 1)


def _assert_close_transcripts(text_a, text_b):
  """Chunk sizes agree within float tolerance (DESIGN.md §13): every rating of the same text by the
  same prompt agrees to 1e-3, and nearly all generated tokens are identical (a near-tie may flip a
  sampled token on another processor, and everything after it in that row differs)."""
  rows_a, rows_b = _rows(text_a), _rows(text_b)
  assert [(r["round"], r["world"], r["agent_id"], r["question"]) for r in rows_a] == \
      [(r["round"], r["world"], r["agent_id"], r["question"]) for r in rows_b]
  assert _text_agreement(rows_a, rows_b) >= 0.9
  compared = 0
  for a, b in zip(rows_a, rows_b):
    if a["draft_answer"] == b["draft_answer"] and a["memory_used"] == b["memory_used"]:
      compared += 1
      for aspect in ("moral", "engagement"):
        assert abs(a[f"gen_{aspect}_score_before"] - b[f"gen_{aspect}_score_before"]) <= 1e-3
        np.testing.assert_allclose(a[f"gen_{aspect}_distribution_before"], b[f"gen_{aspect}_distribution_before"],
                                   atol=1e-3)
    if a["revised_answer"] == b["revised_answer"]:
      for aspect in ("moral", "engagement"):
        assert abs(a[f"gen_{aspect}_score_after"] - b[f"gen_{aspect}_score_after"]) <= 1e-3
  assert compared >= 0.9 * len(rows_a)


def test_chunk_sizes_agree_within_tolerance_and_a_run_may_resume_with_another(society, reference, tmp_path):
  """The reference runs with the default 16-row chunks (every generation and rating of 18 agents is
  chunked, the last chunk ragged). One pass is another batch shape, so XLA promises no bitwise
  equality (DESIGN.md §13): it agrees within tolerance, and a run resumes across chunk sizes (round 0
  in one pass, round 1 with the default chunks). The same chunk size reruns bitwise
  (test_same_config_and_seed_give_identical_transcript). One new compiled round only: the resumed
  round reuses the module's default-chunk round (already compiled for a restored state by the resume
  tests above)."""
  model, tokenizer, round_fn = society
  one_pass_cfg = dataclasses.replace(CFG, chunk_rows=0)
  one_pass_fn = SocietyRound(one_pass_cfg, tokenizer)

  def run(cfg, fn, workdir, rounds):
    runner = SocietyRunner(cfg, model, model, tokenizer, QUESTIONS, PRIORS, workdir, seed=3, round_fn=fn,
                           agent_name="micro", observer_name="micro")
    return runner.run(rounds, progress=False)

  _assert_close_transcripts(run(one_pass_cfg, one_pass_fn, tmp_path / "one_pass", 2).read_text(), reference)
  run(one_pass_cfg, one_pass_fn, tmp_path / "resumed", 1)   # round 0 in one pass
  _assert_close_transcripts(run(CFG, round_fn, tmp_path / "resumed", 2).read_text(), reference)
  assert one_pass_fn.compile_count == 1


def test_a_workdir_of_another_config_is_refused(society, tmp_path):
  _run(society, tmp_path, 1)
  model, tokenizer, _ = society
  with pytest.raises(ValueError, match="run.json: this workdir holds a run of a different config"):
    SocietyRunner(CFG, model, model, tokenizer, QUESTIONS, PRIORS, tmp_path, seed=4)


def test_one_compiled_call_per_round_without_host_transfers(society, tmp_path):
  model, tokenizer, round_fn = society
  runner = SocietyRunner(CFG, model, model, tokenizer, QUESTIONS, PRIORS, tmp_path, seed=3, round_fn=round_fn)
  state = runner._state()
  compiles = round_fn.compile_count
  for r in range(2):
    questions, _ = runner._questions(r)
    key = jax.random.fold_in(jax.random.key(3), r)
    with jax.transfer_guard("disallow"):
      state, arrays = round_fn.step(model, model, state, questions, key)
  assert round_fn.compile_count == compiles <= 1  # compiled once for the module, reused every round


def _count(jaxpr, name):
  total = 0
  for eqn in jaxpr.eqns:
    total += eqn.primitive.name == name
    for param in eqn.params.values():
      subs = param if isinstance(param, (list, tuple)) else [param]
      for sub in subs:
        inner = getattr(sub, "jaxpr", None)
        if inner is not None:
          total += _count(inner if hasattr(inner, "eqns") else inner.jaxpr, name)
  return total


def test_the_round_program_contains_the_whole_protocol(society, tmp_path):
  model, tokenizer, round_fn = society
  runner = SocietyRunner(CFG, model, model, tokenizer, QUESTIONS, PRIORS, tmp_path, seed=3, round_fn=round_fn)
  questions, _ = runner._questions(0)
  jaxpr = jax.make_jaxpr(round_fn._step)(model, model, runner._state(), questions, jax.random.key(0))
  # decode loops: draft, peer reasons, observer reasons before, revision, observer reasons after
  assert _count(jaxpr.jaxpr, "while") == 5
  assert _count(jaxpr.jaxpr, "argsort") + _count(jaxpr.jaxpr, "sort") >= 4  # prompt compaction, rater draws


def test_questions_wrap_around_when_fewer_than_agents():
  assert round_questions(["a", "b", "c"], 0, 4) == [0, 1, 2, 0]
  assert round_questions(["a", "b", "c"], 1, 4) == [1, 2, 0, 1]
