"""Society metrics from an interaction transcript (DESIGN.md §9; rows as §6.7).

Per round, over all worlds and per world:

- `alignment_before` / `alignment_after`: mean observer alignment (`gen_moral_score_*`) of the
  drafts and of the revisions; `lift` = mean(after - before) over agents, the gain from feedback;
  `engagement_before` / `engagement_after` likewise; `peer_rating`: mean over drafts of each
  draft's mean peer rating (as the runner's `metrics.jsonl`).
- `*_ci`: seeded percentile bootstrap 95% intervals of those means (`lift_ci` over the paired
  per-agent differences); `empty_drafts` / `empty_revisions`: answers that are empty or whitespace.
  `overall` holds the same numbers over every round and world.
- rater agreement over drafts with at least two raters: `rater_mad` = mean over those drafts of the
  mean pairwise |r_i - r_j| between the raters of one draft, `rater_std` = mean of the per-draft
  std (ddof=0) of the ratings; `n_multi_rated` counts those drafts (the values are None if 0).
- per world, an alignment map per round: an N x N grid (row-major, `agent_id = row*N + col`) of
  after-revision alignment, None where a cell has no row. N is inferred from the agent ids (the
  largest id + 1 must be a square) or given.

NaN never reaches the output: a missing value is None, so the dict is valid JSON.
"""

import itertools
import math
import pathlib
from collections.abc import Iterable

import numpy as np

from sandbox_jax.data import TranscriptRow, read_transcripts
from sandbox_jax.evaluation.metrics import bootstrap_ci


def load_transcript(transcript) -> list[TranscriptRow]:
  """Validated rows from a JSONL file, a run directory (its `transcript.jsonl`), a directory of
  round files, or an iterable of row dicts / `TranscriptRow`s."""
  if isinstance(transcript, (str, pathlib.Path)):
    path = pathlib.Path(transcript)
    if path.is_dir() and (path / "transcript.jsonl").is_file():
      path = path / "transcript.jsonl"
    rows = read_transcripts(path)
    if not rows:
      raise ValueError(f"{path}: no transcript rows")
    return rows
  rows = [row if isinstance(row, TranscriptRow) else TranscriptRow.from_dict(row, f"transcript row {i}")
          for i, row in enumerate(transcript)]
  if not rows:
    raise ValueError("empty transcript")
  return rows


def infer_grid_size(rows: Iterable[TranscriptRow]) -> int:
  """N such that the agent ids fill an N x N grid: isqrt(largest id + 1), which must be exact."""
  agents = max(row.agent_id for row in rows) + 1
  n = math.isqrt(agents)
  if n * n != agents:
    raise ValueError(f"cannot infer the grid size: the largest agent id is {agents - 1}, so a world "
                     f"has {agents} agents, not a square number; pass grid_size")
  return n


def rater_agreement(ratings) -> tuple[float, float] | None:
  """(mean pairwise |r_i - r_j|, std) of one draft's peer ratings; None below two raters."""
  ratings = np.asarray(ratings, np.float64)
  if ratings.size < 2:
    return None
  pairs = [abs(a - b) for a, b in itertools.combinations(ratings.tolist(), 2)]
  return float(np.mean(pairs)), float(ratings.std())


def _mean(values) -> float | None:
  return float(np.mean(values)) if len(values) else None


def round_aggregate(rows: list[TranscriptRow]) -> dict:
  """The per-round numbers of the module docstring for one group of rows."""
  before = np.asarray([r.gen_moral_score_before for r in rows])
  after = np.asarray([r.gen_moral_score_after for r in rows])
  agreement = [a for a in (rater_agreement(r.rating) for r in rows) if a is not None]
  peer = [float(np.mean(r.rating)) for r in rows if r.rating]
  return {
      "alignment_before": float(before.mean()), "alignment_after": float(after.mean()),
      "lift": float((after - before).mean()),
      "alignment_before_ci": bootstrap_ci(before), "alignment_after_ci": bootstrap_ci(after),
      "lift_ci": bootstrap_ci(after - before),
      "empty_drafts": sum(not r.draft_answer.strip() for r in rows),
      "empty_revisions": sum(not r.revised_answer.strip() for r in rows),
      "engagement_before": float(np.mean([r.gen_engagement_score_before for r in rows])),
      "engagement_after": float(np.mean([r.gen_engagement_score_after for r in rows])),
      "peer_rating": _mean(peer),
      "rater_mad": _mean([a[0] for a in agreement]), "rater_std": _mean([a[1] for a in agreement]),
      "n_agents": len(rows), "n_multi_rated": len(agreement),
  }


def alignment_map(rows: list[TranscriptRow], grid_size: int) -> list[list[float | None]]:
  """N x N after-revision alignment of one world in one round (None for empty cells)."""
  grid = [[None] * grid_size for _ in range(grid_size)]
  for row in rows:
    r, c = divmod(row.agent_id, grid_size)
    grid[r][c] = float(row.gen_moral_score_after)
  return grid


def society_metrics(transcript, grid_size: int | None = None) -> dict:
  """Metrics of a transcript (see module docstring).

  Returns {"grid_size", "rounds": [round ids], "per_round": [{"round", ...}],
  "worlds": [{"world_index", "world", "seed", "per_round": [...], "alignment_maps": [N x N per
  round in `rounds` order]}], "summary": flat floats for `compare`}.
  """
  rows = load_transcript(transcript)
  n = infer_grid_size(rows) if grid_size is None else int(grid_size)
  seen, worlds = set(), {}
  for row in rows:
    if not 0 <= row.agent_id < n * n:
      raise ValueError(f"agent_id {row.agent_id} is outside a {n}x{n} grid")
    key = (row.world_index, row.round, row.agent_id)
    if key in seen:
      raise ValueError(f"two transcript rows for world {key[0]}, round {key[1]}, agent {key[2]}")
    seen.add(key)
    identity = worlds.setdefault(row.world_index, (row.world, row.seed))
    if identity != (row.world, row.seed):
      raise ValueError(f"world_index {row.world_index} names two worlds: {identity} and {(row.world, row.seed)}")
  rounds = sorted({row.round for row in rows})
  per_round = [{"round": r, **round_aggregate([x for x in rows if x.round == r])} for r in rounds]
  overall = round_aggregate(rows)
  world_blocks = []
  for index in sorted(worlds):
    mine = [x for x in rows if x.world_index == index]
    by_round = {r: [x for x in mine if x.round == r] for r in rounds}
    world_blocks.append({
        "world_index": index, "world": worlds[index][0], "seed": worlds[index][1],
        "per_round": [{"round": r, **round_aggregate(by_round[r])} for r in rounds if by_round[r]],
        "alignment_maps": [alignment_map(by_round[r], n) for r in rounds]})
  result = {"grid_size": n, "rounds": rounds, "per_round": per_round, "overall": overall, "worlds": world_blocks}
  result["summary"] = society_summary(result)
  return result


def society_summary(result: dict) -> dict[str, float]:
  """Flat numbers for `compare`: first-round draft alignment, last-round revised alignment, and the
  means over rounds of lift and rater disagreement."""
  per_round = result["per_round"]
  out = {"society/alignment_before_first": per_round[0]["alignment_before"],
         "society/alignment_after_last": per_round[-1]["alignment_after"],
         "society/lift_mean": float(np.mean([p["lift"] for p in per_round]))}
  mad = [p["rater_mad"] for p in per_round if p["rater_mad"] is not None]
  if mad:
    out["society/rater_mad_mean"] = float(np.mean(mad))
  return out
