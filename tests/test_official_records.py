"""Official mode of the records stage: `collect_data.py`'s rules on a hand-built transcript.

Expected outputs are spelled out from the original code (agi-templar/Stable-Alignment
collect_data.py): per agent log (world, agent, round), imitation = draft + revision; self-critic = one
per (feedback, rating) pair whose feedback is truthy; realignment = one per exploded pair (blank
reasons included; 'nan' when the row has no pair) if after > before and after > 4; per type
`drop_duplicates(subset=['response'])`, then `groupby(['query'])` (sorted); n_self = min(int(n_imit
* ratio), n), n_rev = min(int(n_rev * ratio), n), each `sample(n)`.
"""

import json

import numpy as np
import pytest

from sandbox_jax import data
from sandbox_jax.data import records as rec
from sandbox_jax.pipeline.records import build_records
from tests.test_records import make_row

CRITIC = (" Please comment on the response in the input in terms of how well it is aligned with shared"
          " social values.")
COMMON = (" Please first common on this response, and then revise it to make it better aligned with"
          " shared social values.")
START = " Here is the revised response: "
DIST = [0.0, 0.0, 0.1, 0.2, 0.4, 0.2, 0.1]


def row(world_index, agent, rnd, q, draft, revised, target, feedback, rating, before, after):
  return data.TranscriptRow.from_dict(make_row(
      world="all_good" if world_index == 0 else "all_bad", world_index=world_index, round=rnd, iteration=rnd,
      agent_id=agent, question=q, draft_answer=draft, revised_answer=revised, target_id=target,
      feedback=feedback, rating=rating, rating_argmax=[round(r) for r in rating],
      rating_distribution=[DIST] * len(rating), gen_moral_score_before=before, gen_moral_score_after=after))


R0A0 = row(0, 0, 0, "Is lying ok?", "Lie when useful.", "Be honest.", [3, 2], ["Harmful advice.", ""],
           [6.0, 3.0], 3.0, 5.0)
R0A1 = row(0, 1, 0, "How to cheat?", "Do not cheat.", "Do not cheat.", [0, 3], ["fine", "fine"], [5.0, 5.0],
           4.0, 4.0)
W1A0 = row(1, 0, 0, "Why be kind?", "No reason.", "Kindness helps everyone.", [], [], [], 1.0, 7.0)
R1A0 = row(0, 0, 1, "Can I steal?", "Same answer.", "No, stealing hurts others.", [1, 2], [" ", "bad idea"],
           [4.0, 2.0], 2.0, 6.0)
R1A1 = row(0, 1, 1, "Any tips?", "Same answer.", "Sleep well.", [2, 0], ["ok", "meh"], [5.0, 5.0], 5.0, 5.0)
TRANSCRIPT = [R0A0, R0A1, W1A0, R1A0, R1A1]   # as the runner writes it: round by round


def q(instruction, inp=""):
  return data.alpaca_prompt(instruction, inp)


def summary(groups):
  return [(g.type, g.query, list(g.responses), list(g.scores)) for g in groups]


def test_official_records_without_subsampling():
  sel = rec.select_groups(TRANSCRIPT, dict(rec.OFFICIAL_RECORDS, self_critic_ratio=None,
                                           realignment_ratio=None))
  assert summary(sel.groups) == [
      # imitation: 10 records; the repeated 'Do not cheat.' (unchanged revision) and agent 1's
      # 'Same answer.' (agent 0 said it first, to another question) are dropped; sorted by prompt
      ("imitation", q("Any tips?"), ["Sleep well."], [5.0]),
      ("imitation", q("Can I steal?"), ["Same answer.", "No, stealing hurts others."], [2.0, 6.0]),
      ("imitation", q("How to cheat?"), ["Do not cheat."], [4.0]),
      ("imitation", q("Is lying ok?"), ["Lie when useful.", "Be honest."], [3.0, 5.0]),
      ("imitation", q("Why be kind?"), ["No reason.", "Kindness helps everyone."], [1.0, 7.0]),
      # self-critic: '' gives no record, ' ' does (truthy); the second 'fine' is a duplicate response
      ("self_critic", q("Any tips?" + CRITIC, "Same answer."), ["ok", "meh"], [5.0, 5.0]),
      ("self_critic", q("Can I steal?" + CRITIC, "Same answer."), [" ", "bad idea"], [4.0, 2.0]),
      ("self_critic", q("How to cheat?" + CRITIC, "Do not cheat."), ["fine"], [5.0]),
      ("self_critic", q("Is lying ok?" + CRITIC, "Lie when useful."), ["Harmful advice."], [6.0]),
      # realignment: one per peer, blank reasons included; the peerless row gives 'nan'; ties
      # (4 -> 4, 5 -> 5) give none
      ("realignment", q("Can I steal? Same answer." + COMMON),
       [" " + START + "No, stealing hurts others.", "bad idea" + START + "No, stealing hurts others."],
       [6.0, 6.0]),
      ("realignment", q("Is lying ok? Lie when useful." + COMMON),
       ["Harmful advice." + START + "Be honest.", START + "Be honest."], [5.0, 5.0]),
      ("realignment", q("Why be kind? No reason." + COMMON), ["nan" + START + "Kindness helps everyone."],
       [7.0]),
  ]
  assert sel.counts == {"imitation": {"records": 10, "groups": 5, "groups_kept": 5},
                        "self_critic": {"records": 7, "groups": 4, "groups_kept": 4},
                        "realignment": {"records": 5, "groups": 3, "groups_kept": 3}}
  # provenance: realignment records name the peer whose reason they carry; 'nan' names none
  assert [p.rater_ids for p in sel.groups[-2].provenance] == [(3,), (2,)]
  assert sel.groups[-1].provenance[0].rater_ids == ()
  # the kept records regroup to the same groups, in the same order
  assert data.group_records(sel.records) == sel.groups


def test_official_subsampling_counts_and_picks():
  sel = rec.select_groups(TRANSCRIPT, dict(rec.OFFICIAL_RECORDS, self_critic_ratio=0.5, realignment_ratio=0.7))
  # n_self = min(int(5 * 0.5), 4) = 2 of the 4 sorted self-critic groups; n_rev = min(int(3 * 0.7), 3) = 2
  # (of the realignment groups themselves); DataFrame.sample(n, random_state=0) picks
  # RandomState(0).choice(N, n, replace=False): [2, 3] of 4 and [2, 1] of 3, in that order.
  assert rec.official_sample(4, 2, 0) == [2, 3] and rec.official_sample(3, 2, 0) == [2, 1]
  assert [(g.type, g.query) for g in sel.groups[5:]] == [
      ("self_critic", q("How to cheat?" + CRITIC, "Do not cheat.")),
      ("self_critic", q("Is lying ok?" + CRITIC, "Lie when useful.")),
      ("realignment", q("Why be kind? No reason." + COMMON)),
      ("realignment", q("Is lying ok? Lie when useful." + COMMON))]
  assert len(sel.groups) == 9 and [g.type for g in sel.groups[:5]] == ["imitation"] * 5
  # the official ratios (0.1 each) keep no self-critic or realignment group of so small a transcript
  official = rec.select_groups(TRANSCRIPT, rec.OFFICIAL_RECORDS)
  assert [g.type for g in official.groups] == ["imitation"] * 5
  assert official.counts["self_critic"]["groups_kept"] == 0 == official.counts["realignment"]["groups_kept"]


def test_subsampling_matches_numpy_legacy_choice():
  for n, k, seed in ((10, 3, 0), (7, 7, 5), (25, 1, 3)):
    assert rec.official_sample(n, k, seed) == np.random.RandomState(seed).permutation(n)[:k].tolist()


def test_default_config_is_the_project_rules_unchanged():
  sel = rec.select_groups(TRANSCRIPT)
  records = data.rows_to_records(TRANSCRIPT)
  assert sel.records == records
  assert sel.groups == data.group_records(records)
  realignment = [g for g in sel.groups if g.type == "realignment"]
  # lowest-rated non-blank reason, one record per qualifying row; the peerless row gives none
  assert [g.responses for g in realignment] == [("Harmful advice." + START + "Be honest.",),
                                                ("bad idea" + START + "No, stealing hurts others.",)]


def test_realignment_reason_per_peer_on_single_rows():
  assert rec.realignment_records(W1A0, reason="per_peer")[0].output == "nan" + START + "Kindness helps everyone."
  assert rec.realignment_records(W1A0, reason="each") == []
  blank = [r.output for r in rec.realignment_records(R0A0, reason="per_peer")]
  assert blank == ["Harmful advice." + START + "Be honest.", START + "Be honest."]
  assert [r.output for r in rec.self_critic_records(R1A0, blank_reason="empty")] == [" ", "bad idea"]
  assert [r.output for r in rec.self_critic_records(R1A0)] == ["bad idea"]


@pytest.mark.parametrize("values,message", [
    ({"realignment_reason": "all"}, "records.realignment_reason"),
    ({"dedupe": "everywhere"}, "records.dedupe"),
    ({"self_critic_ratio": -0.1}, "records.self_critic_ratio"),
    ({"official_typo": "yes"}, "records.official_typo"),
    ({"ratio": 0.1}, r"records: unknown keys \['ratio'\]"),
])
def test_records_config_errors_name_the_key(values, message):
  with pytest.raises(ValueError, match=message):
    rec.RecordsConfig.from_dict(values)


def test_records_stage_takes_the_config(tmp_path):
  transcript = tmp_path / "transcript.jsonl"
  data.write_transcripts(transcript, TRANSCRIPT)
  config = dict(rec.OFFICIAL_RECORDS, self_critic_ratio=0.5, realignment_ratio=0.7)
  summary = build_records(transcript, tmp_path / "out", config)
  assert summary["groups"] == 9 and summary["records"] == 8 + 2 + 3
  assert summary["by_type"] == {"imitation": 8, "self_critic": 2, "realignment": 3}
  assert summary["selection"]["self_critic"] == {"records": 7, "groups": 4, "groups_kept": 2}
  groups = data.read_sandbox_v1(tmp_path / "out" / "sandbox_v1.json")
  assert groups == data.group_records(data.read_records(tmp_path / "out" / "records.jsonl"))
  assert summary_of(groups) == summary_of(rec.select_groups(TRANSCRIPT, config).groups)
  default = build_records(transcript, tmp_path / "default")
  assert default["records"] == len(data.rows_to_records(TRANSCRIPT))
  assert json.loads((tmp_path / "default" / "sandbox_v1.json").read_text())[0]["query"] == q("Is lying ok?")


def summary_of(groups):
  return [(g.type, g.query, g.responses, g.scores) for g in groups]
