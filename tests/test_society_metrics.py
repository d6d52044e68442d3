"""Society metrics: a hand-built 2-round transcript against hand-computed values, the real runner's
transcript against its own metrics.jsonl, grid-size inference and bad inputs."""

import json
import math
import pathlib

import pytest

from sandbox_jax.data import DataFormatError
from sandbox_jax.evaluation.society_metrics import infer_grid_size, load_transcript, society_metrics

FIX = pathlib.Path(__file__).parent / "fixtures" / "society"
UNIFORM = [1 / 7] * 7


def make_row(world_index: int, round_: int, agent_id: int, before: float, after: float,
             ratings=(4.0,), **overrides) -> dict:
  """A complete, valid transcript row (DESIGN.md §6.7); peer ratings must be sorted descending."""
  ratings = list(ratings)
  raters = [(agent_id + 1 + j) % 100 for j in range(len(ratings))]
  row = {
      "world": overrides.pop("world", f"world{world_index}"), "world_index": world_index,
      "seed": overrides.pop("seed", world_index), "round": round_, "iteration": round_, "agent_id": agent_id,
      "label": "good" if agent_id % 2 == 0 else "bad",
      "question": f"Question {round_}-{agent_id}?", "draft_answer": f"draft {round_}-{agent_id}",
      "target_id": raters, "feedback": [f"reason from {r}" for r in raters], "rating": ratings,
      "rating_argmax": [int(round(r)) for r in ratings], "rating_distribution": [UNIFORM] * len(ratings),
      "average_rating": sum(ratings) / len(ratings) if ratings else 0.0,
      "revised_answer": f"revised {round_}-{agent_id}",
      "gen_moral_score_before": before, "gen_moral_reason_before": "draft reason",
      "gen_moral_score_after": after, "gen_moral_reason_after": "revised reason",
      "gen_engagement_score_before": 2.0, "gen_engagement_reason_before": "",
      "gen_engagement_score_after": 3.0, "gen_engagement_reason_after": "",
      "gen_moral_distribution_before": UNIFORM, "gen_moral_distribution_after": UNIFORM,
      "gen_engagement_distribution_before": UNIFORM, "gen_engagement_distribution_after": UNIFORM,
      "memory_used": None, "agent_model": "agent", "observer_model": "observer"}
  row.update(overrides)
  return row


def hand_transcript() -> list[dict]:
  """2x2 grid, 2 rounds; agent 3 is absent in round 1."""
  return [
      make_row(0, 0, 0, 3.0, 5.0, [6.0, 4.0]),
      make_row(0, 0, 1, 4.0, 4.0, [5.0, 5.0, 2.0]),
      make_row(0, 0, 2, 2.0, 5.0, [3.0]),
      make_row(0, 0, 3, 6.0, 7.0, [7.0, 6.0, 5.0, 4.0]),
      make_row(0, 1, 0, 5.0, 4.0, [2.0, 2.0]),
      make_row(0, 1, 1, 1.0, 3.0, [1.0]),
      make_row(0, 1, 2, 7.0, 7.0, [7.0, 1.0]),
  ]


def test_hand_built_transcript_matches_hand_computation():
  m = society_metrics(hand_transcript())
  assert m["grid_size"] == 2 and m["rounds"] == [0, 1]
  r0, r1 = m["per_round"]
  # round 0: pairwise |d| per draft: [2], [0, 3, 3] -> 2, single rater -> none, [1,2,3,1,2,1] -> 5/3
  assert r0["alignment_before"] == pytest.approx((3 + 4 + 2 + 6) / 4)
  assert r0["alignment_after"] == pytest.approx((5 + 4 + 5 + 7) / 4)
  assert r0["lift"] == pytest.approx(1.5)
  assert r0["rater_mad"] == pytest.approx((2 + 2 + 5 / 3) / 3)
  assert r0["rater_std"] == pytest.approx((1 + math.sqrt(2) + math.sqrt(1.25)) / 3)
  assert r0["peer_rating"] == pytest.approx((5 + 4 + 3 + 5.5) / 4)
  assert (r0["n_agents"], r0["n_multi_rated"]) == (4, 3)
  assert (r0["engagement_before"], r0["engagement_after"]) == (2.0, 3.0)
  assert r1["alignment_before"] == pytest.approx(13 / 3)
  assert r1["alignment_after"] == pytest.approx(14 / 3)
  assert r1["lift"] == pytest.approx(1 / 3)
  assert r1["rater_mad"] == pytest.approx(3.0) and r1["rater_std"] == pytest.approx(1.5)
  (world,) = m["worlds"]
  assert world["alignment_maps"] == [[[5.0, 4.0], [5.0, 7.0]], [[4.0, 3.0], [7.0, None]]]
  assert world["per_round"] == m["per_round"]
  assert m["summary"] == pytest.approx({"society/alignment_before_first": 3.75,
                                        "society/alignment_after_last": 14 / 3,
                                        "society/lift_mean": (1.5 + 1 / 3) / 2,
                                        "society/rater_mad_mean": (17 / 9 + 3) / 2})
  json.dumps(m, allow_nan=False)  # valid JSON: no NaN anywhere


def test_worlds_are_split_and_pooled():
  other = [make_row(1, 0, a, 1.0, 2.0, [1.0, 1.0], world="all_bad", seed=7) for a in range(4)]
  m = society_metrics(hand_transcript() + other)
  w0, w1 = m["worlds"]
  assert (w1["world"], w1["seed"], w1["world_index"]) == ("all_bad", 7, 1)
  assert w0["per_round"] == society_metrics(hand_transcript())["per_round"]
  assert [p["round"] for p in w1["per_round"]] == [0]
  assert w1["alignment_maps"][1] == [[None, None], [None, None]]
  assert m["per_round"][0]["alignment_after"] == pytest.approx((5 + 4 + 5 + 7 + 4 * 2) / 8)
  assert m["per_round"][0]["rater_mad"] == pytest.approx((2 + 2 + 5 / 3 + 0 * 4) / 7)


def test_real_runner_transcript_agrees_with_its_metrics_file():
  m = society_metrics(FIX / "transcript.jsonl")
  assert m["grid_size"] == 3 and [w["world"] for w in m["worlds"]] == ["half_half", "all_bad"]
  expected = [json.loads(line) for line in (FIX / "metrics.jsonl").read_text().splitlines()]
  for ours, theirs in zip(m["per_round"], expected, strict=True):
    for key in ("alignment_before", "alignment_after", "lift", "engagement_before", "engagement_after",
                "peer_rating"):
      assert ours[key] == pytest.approx(theirs[key]), key
    assert ours["rater_std"] == pytest.approx(theirs["peer_rating_spread"])  # every draft has >= 2 raters
  rows = [json.loads(line) for line in (FIX / "transcript.jsonl").read_text().splitlines()]
  row = next(r for r in rows if (r["world_index"], r["round"], r["agent_id"]) == (1, 1, 5))
  assert m["worlds"][1]["alignment_maps"][1][1][2] == row["gen_moral_score_after"]


def test_grid_size_inference_and_checks():
  rows = hand_transcript()
  assert infer_grid_size(load_transcript(rows)) == 2
  with pytest.raises(ValueError, match="largest agent id is 4.*pass grid_size"):
    society_metrics(rows + [make_row(0, 0, 4, 4.0, 4.0)])
  assert society_metrics(rows + [make_row(0, 0, 4, 4.0, 4.0)], grid_size=3)["grid_size"] == 3
  with pytest.raises(ValueError, match="agent_id 1 is outside a 1x1 grid"):
    society_metrics(rows, grid_size=1)
  with pytest.raises(ValueError, match="two transcript rows for world 0, round 1, agent 2"):
    society_metrics(rows + [make_row(0, 1, 2, 4.0, 4.0)])


def test_bad_rows_name_their_location(tmp_path):
  with pytest.raises(DataFormatError, match="transcript row 1: missing field 'revised_answer'"):
    bad = make_row(0, 0, 1, 4.0, 4.0)
    del bad["revised_answer"]
    society_metrics([make_row(0, 0, 0, 4.0, 4.0), bad])
  path = tmp_path / "t.jsonl"
  path.write_text(json.dumps(make_row(0, 0, 0, 4.0, 4.0)) + "\n" + "{not json\n")
  with pytest.raises(DataFormatError, match=f"{path}:2: malformed JSON"):
    society_metrics(path)
  with pytest.raises(FileNotFoundError, match="nowhere"):
    society_metrics(tmp_path / "nowhere")


def test_empty_answers_are_counted_and_intervals_bracket_the_means():
  rows = hand_transcript()
  rows[1]["draft_answer"] = "  \n"        # whitespace only counts as empty
  rows[4]["revised_answer"] = ""
  m = society_metrics(rows)
  r0, r1 = m["per_round"]
  assert (r0["empty_drafts"], r0["empty_revisions"]) == (1, 0)
  assert (r1["empty_drafts"], r1["empty_revisions"]) == (0, 1)
  overall = m["overall"]
  assert (overall["empty_drafts"], overall["empty_revisions"], overall["n_agents"]) == (1, 1, 7)
  assert overall["lift"] == pytest.approx((2 + 0 + 3 + 1 - 1 + 2 + 0) / 7)
  for block in (r0, r1, overall):
    for key, ci in (("alignment_before", "alignment_before_ci"), ("alignment_after", "alignment_after_ci"),
                    ("lift", "lift_ci")):
      low, high = block[ci]
      assert low <= block[key] <= high
  # the lift interval is over paired differences: round 1's are (-1, 2, 0), so it lies in [-1, 2]
  assert -1.0 <= r1["lift_ci"][0] < r1["lift_ci"][1] <= 2.0
  json.dumps(m)   # still valid JSON
