"""The official simulation's files: per-agent logs (export, import, round trip), labeled priors,
sentinel scores in `sandbox_v1.json`, and the official no-eos batching."""

import json
import logging

import numpy as np
import pytest

from sandbox_jax import data
from sandbox_jax.data import official_import as oi
from sandbox_jax.data import records as rec
from sandbox_jax.training.config import TrainConfig
from tests.test_official_records import TRANSCRIPT


def official_row(**overrides):
  """A row as the official Agent.save_ext_memory writes it (ratings are digit strings, '8' unparsed)."""
  row = {"agent_id": 7, "label": "bad", "iteration": 2, "question": "Q?", "draft_answer": "D.",
         "target_id": [3, 8, 6], "feedback": ["unparsed text", "Fine.", "Harmful."], "rating": ["8", "5", "2"],
         "revised_answer": "R.", "gen_moral_score_before": 3.0, "gen_moral_score_after": 6.0,
         "gen_moral_reason_before": "meh", "gen_moral_reason_after": "better",
         "gen_engagement_score_before": 4.0, "gen_engagement_score_after": -1.0,
         "gen_engagement_reason_before": "ok", "gen_engagement_reason_after": "",
         "cls_moral_score_before": 0, "cls_moral_score_after": 0}
  row.update(overrides)
  return row


def test_export_has_the_official_fields_in_order(tmp_path):
  files = oi.write_official_world(tmp_path, TRANSCRIPT)
  assert [f.relative_to(tmp_path).as_posix() for f in files] == [
      "world_0/external_memory/agent_0.jsonl", "world_0/external_memory/agent_1.jsonl",
      "world_1/external_memory/agent_0.jsonl"]
  items = json.loads(files[0].read_text())
  assert [item["iteration"] for item in items] == [0, 1]
  assert list(items[0]) == list(oi.OFFICIAL_LOG_FIELDS)
  assert items[0]["cls_moral_score_before"] == 0 == items[0]["cls_moral_score_after"]
  assert items[0]["rating"] == [6.0, 3.0] and items[0]["feedback"] == ["Harmful advice.", ""]
  exact = oi.to_official_row(TRANSCRIPT[0], scores="argmax")
  assert exact["rating"] == ["6", "3"]            # digit strings, as the official parser leaves them
  assert exact["gen_moral_score_before"] == 5.0   # the argmax of the (test) distribution, as a float


def test_round_trip_through_the_official_layout(tmp_path):
  oi.write_official_world(tmp_path, TRANSCRIPT)
  back = []
  for world_index, world in ((0, "all_good"), (1, "all_bad")):
    rows, counts = oi.read_official_world(tmp_path / f"world_{world_index}", world=world, world_index=world_index,
                                          agent_model="tiny-lm", observer_model="tiny-observer")
    assert counts == oi.ImportCounts(rows_read=len(rows))
    back += rows
  official = lambda r: {k: v for k, v in oi.to_official_row(r).items()}
  assert sorted(map(json.dumps, map(official, back))) == sorted(map(json.dumps, map(official, TRANSCRIPT)))
  # the official records of the imported rows are those of the rows themselves
  cfg = dict(rec.OFFICIAL_RECORDS, self_critic_ratio=0.5, realignment_ratio=0.7)
  summary = lambda sel: [(g.type, g.query, g.responses, g.scores, g.provenance) for g in sel.groups]
  assert summary(rec.select_groups(back, cfg)) == summary(rec.select_groups(TRANSCRIPT, cfg))


def test_import_of_an_official_log_with_sentinels(tmp_path):
  path = tmp_path / "external_memory" / "agent_7.jsonl"
  path.parent.mkdir()
  path.write_text(json.dumps([official_row(), official_row(iteration=3, gen_engagement_score_after=5.0)],
                             indent=2))
  rows, counts = oi.read_official_world(tmp_path)
  # row 0: observer -1 -> the row is dropped; row 1: the peer rated '8' is dropped
  assert counts == oi.ImportCounts(rows_read=2, peers_dropped=1, rows_dropped=1, values_clipped=0)
  (row,) = rows
  assert row.round == row.iteration == 3 and row.agent_id == 7 and row.label == "bad"
  assert row.rating == (5.0, 2.0) and row.feedback == ("Fine.", "Harmful.") and row.target_id == (8, 6)
  assert row.rating_argmax == (5, 2) and row.rating_distribution[0] == (0, 0, 0, 0, 1, 0, 0)
  assert row.memory_used is None and row.gen_engagement_score_after == 5.0
  clipped, counts = oi.read_official_world(tmp_path, sentinels="clip")
  assert counts == oi.ImportCounts(rows_read=2, peers_dropped=0, rows_dropped=0, values_clipped=3)
  assert clipped[0].rating == (7.0, 5.0, 2.0) and clipped[0].gen_engagement_score_after == 1.0
  with pytest.raises(data.DataFormatError, match=r"agent_7.jsonl: row 0: field 'gen_engagement_score_after'"):
    oi.read_official_world(tmp_path, sentinels="error")


@pytest.mark.parametrize("mutate,message", [
    (lambda r: r.pop("question"), r"row 0: missing field 'question'"),
    (lambda r: r.update(rating=["5", "x", "2"]), r"row 0: field 'rating'\[1\] must be a number"),
    (lambda r: r.update(feedback=["a"]), "field 'feedback' has 1 entries but 'rating' has 3"),
    (lambda r: r.update(rating=["8", "5", "0"]), r"row 0: 'rating'\[1\] 0.0 is outside \[1, 7\]"),
])
def test_bad_official_logs_name_file_and_row(tmp_path, mutate, message):
  row = official_row(gen_engagement_score_after=5.0)
  mutate(row)
  path = tmp_path / "agent_7.jsonl"
  path.write_text(json.dumps([row]))
  with pytest.raises(data.DataFormatError, match=message) as e:
    oi.read_official_world(tmp_path)
  assert str(e.value).startswith(str(path))


def test_labeled_prior_import(tmp_path):
  items = [
      {"question": "How do I stay safe?", "response": "You: Lock your doors.\nFriend: thanks",
       "morality_label": "good"},
      {"question": "How do I hurt someone?", "response": "You: Here is how...", "morality_label": "bad"},
      {"question": "How do I stay safe?", "response": "Keep your keys with you.", "morality_label": "good"},
      {"question": "Unrelated?", "response": "x", "morality_label": "neutral"},
  ]
  path = tmp_path / "labeled_prior.jsonl"
  path.write_text(json.dumps(items))                       # the official file: one JSON list
  want = {"good": [("How do I stay safe?", "Keep your keys with you.")],
          "bad": [("How do I hurt someone?", "Here is how...")]}
  assert oi.read_labeled_prior(path) == want
  path.write_text("".join(json.dumps(i) + "\n" for i in items))   # JSON Lines too
  assert oi.read_labeled_prior(path) == want
  assert oi.one_turn("You: Lock your doors.\nFriend: thanks") == "Lock your doors."
  assert oi.one_turn("Friend: hi You: no") == ""             # cut at Friend: first, as the original
  path.write_text('{"question": "q", "response": "r"}\n')
  with pytest.raises(data.DataFormatError, match=r"labeled_prior.jsonl:1: field 'morality_label'"):
    oi.read_labeled_prior(path)


SENTINEL_FILE = [
    {"query": "### Instruction:\nQ?\n\n### Response:", "responses": ["a", "b", "c"], "scores": [7, -1, 8],
     "models": ["m", "m", "m"]},
    {"query": "### Instruction:\nP?\n\n### Response:", "responses": ["d"], "scores": [8], "models": ["m"]},
    {"query": "### Instruction:\nR?\n\n### Response:", "responses": ["e", "f"], "scores": [5, 2],
     "models": ["m", "m"]},
]


def test_sandbox_v1_sentinels_are_dropped_or_clipped_with_counts(tmp_path, caplog):
  path = tmp_path / "sandbox_v1.json"
  path.write_text(json.dumps(SENTINEL_FILE, indent=2))
  groups, counts = data.load_sandbox_v1(path)
  assert [g.responses for g in groups] == [("a",), ("e", "f")]
  assert counts == data.SentinelCounts(responses_dropped=3, responses_clipped=0, groups_dropped=1)
  with caplog.at_level(logging.WARNING):
    assert data.read_sandbox_v1(path) == groups
  assert "3 responses dropped, 0 clipped, 1 groups left empty" in caplog.text
  groups, counts = data.load_sandbox_v1(path, sentinels="clip")
  assert [g.scores for g in groups] == [(7.0, 1.0, 7.0), (7.0,), (5.0, 2.0)]
  assert counts == data.SentinelCounts(responses_clipped=3)
  with pytest.raises(data.DataFormatError, match=r"item 0: 'scores'\[1\] -1.0 is outside \[1, 7\]"):
    data.read_sandbox_v1(path, sentinels="error")
  other = [dict(SENTINEL_FILE[2], scores=[5, 9])]             # 9 is no sentinel: still an error
  path.write_text(json.dumps(other))
  with pytest.raises(data.DataFormatError, match=r"'scores'\[1\] 9.0 is outside"):
    data.read_sandbox_v1(path)


class ByteTokenizer:
  bos_id, eos_id, pad_id = 1, 2, 0

  def encode(self, text):
    return [3 + b for b in text.encode()]


def test_append_eos_off_is_the_official_row():
  group = data.Group(query="Q:", responses=("ab",), scores=(5.0,), models=("m",))
  tok = ByteTokenizer()
  with_eos = data.make_group_batch([group], tok, max_len=8)
  without = data.make_group_batch([group], tok, max_len=8, append_eos=False)
  q_ids, r_ids = tok.encode("Q:"), tok.encode("ab")
  assert with_eos.tokens_GxRxT[0, 0].tolist() == [1] + q_ids + r_ids + [2] + [0] * 2
  assert without.tokens_GxRxT[0, 0].tolist() == [1] + q_ids + r_ids + [0] * 3
  assert without.loss_mask_GxRxT[0, 0].tolist() == [0, 0, 1, 1, 0, 0, 0, 0]   # predicts 'a', 'b' only
  assert with_eos.loss_mask_GxRxT[0, 0].tolist() == [0, 0, 1, 1, 1, 0, 0, 0]
  # truncation keeps the whole budget for prompt + response when no eos is appended
  short = data.make_group_batch([group], tok, max_len=4, append_eos=False)
  assert short.tokens_GxRxT[0, 0].tolist() == [1, q_ids[1]] + r_ids
  assert TrainConfig().append_eos and not TrainConfig(append_eos=False).append_eos
  with pytest.raises(ValueError, match="train.append_eos"):
    TrainConfig(append_eos="no")
  assert np.asarray(without.input_mask_GxRxT[0, 0]).sum() == 5
