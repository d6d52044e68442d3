"""The official simulation's files: per-agent logs (export and import) and prior memories (import).

agi-templar/Stable-Alignment writes one log per agent, `data/cache/world_<id>/external_memory/
agent_<id>.jsonl` — despite the name one JSON list (`DataFrame.to_json(orient='records', indent=2)`)
of rows with the fields `OFFICIAL_LOG_FIELDS`, in that order (`Agent.save_ext_memory`):

* `rating` holds the peers' parsed ratings as digit strings ("5"), sorted descending with the
  unparsable ones as "8" first; `feedback` is sorted with them; `target_id` is NOT — it lists the
  raters in the order they were drawn, so the official log does not say which rater wrote which
  reason;
* observer scores are floats, -1.0 when unparsable; `cls_moral_score_before/after` are always 0
  (the classifier call is commented out).

`to_official_row` / `write_official_world` export our transcript rows to that layout, so the official
`collect_data.py` reads them (`--world_ids` = our `world_index`es). Our `target_id` is sorted with the
ratings, so it stays aligned with `feedback`. `scores='expected'` (default) writes our expected
ratings as numbers; `scores='argmax'` writes the official types exactly (peer ratings as the digit
strings of the chosen rating, re-sorted by it; observer scores as the float of the distribution's
argmax).

`official_rows_to_transcript` / `read_official_world` import official logs as `TranscriptRow`s: a
rating r becomes a one-hot distribution at round(r); world, seed and model names are not in the log
and are given by the caller; no memory entry is recorded. Sentinels follow `sentinels`: `'drop'`
(default) drops a peer rated 8 (its reason and the `target_id` at the same position, which in the
official log need not be that rater) and a row whose observer score is -1; `'clip'` moves them to the
nearest end of the scale; `'error'` rejects them. The counts come back with the rows.

`read_labeled_prior` imports `assets/hh-rlhf/labeled_prior.jsonl` (a JSON list of
`{question, response, morality_label}`, read with `pd.read_json(orient='records')`; JSON Lines is
accepted too) as the `{'good': [(q, a)], 'bad': [...]}` prior memories `society.setup.initial_state`
takes. Each response is cut to one turn as `sample_init_data(one_turn_only=True)` does (up to
"Friend:", then after "You:"), and, as the official per-agent dict does, a question keeps one answer
(the last one read) at its first position.
"""

import dataclasses
import json
import math
import pathlib
import re
from typing import Any, Iterable

from sandbox_jax.data import jsonl
from sandbox_jax.data.schemas import DEFAULT_SCALE, LABELS, DataFormatError, TranscriptRow

OFFICIAL_LOG_FIELDS = (
    "agent_id", "label", "iteration", "question", "draft_answer", "target_id", "feedback", "rating",
    "revised_answer", "gen_moral_score_before", "gen_moral_score_after", "gen_moral_reason_before",
    "gen_moral_reason_after", "gen_engagement_score_before", "gen_engagement_score_after",
    "gen_engagement_reason_before", "gen_engagement_reason_after", "cls_moral_score_before",
    "cls_moral_score_after")
OBSERVER_SCORES = ("gen_moral_score_before", "gen_moral_score_after", "gen_engagement_score_before",
                   "gen_engagement_score_after")
OBSERVER_REASONS = ("gen_moral_reason_before", "gen_moral_reason_after", "gen_engagement_reason_before",
                    "gen_engagement_reason_after")
PEER_SENTINEL = 8.0       # unparsable peer rating
OBSERVER_SENTINEL = -1.0  # unparsable observer score
SENTINEL_POLICIES = ("drop", "clip", "error")
_AGENT_FILE = re.compile(r"agent_(\d+)\.jsonl$")


# ----------------------------------------------------------------------------------------------
# Export.

def _argmax_rating(distribution) -> int:
  return max(range(len(distribution)), key=lambda i: (distribution[i], -i)) + 1


def to_official_row(row: TranscriptRow, scores: str = "expected") -> dict[str, Any]:
  """One transcript row as the official log row (`OFFICIAL_LOG_FIELDS`, in order)."""
  if scores not in ("expected", "argmax"):
    raise ValueError(f"scores must be 'expected' or 'argmax', got {scores!r}")
  peers = list(zip(row.target_id, row.feedback, row.rating, row.rating_argmax))
  if scores == "argmax":
    peers.sort(key=lambda p: -p[3])   # stable, as the official sorted(..., reverse=True)
    ratings = [str(p[3]) for p in peers]
    observer = {name: float(_argmax_rating(getattr(row, name.replace("score", "distribution"))))
                for name in OBSERVER_SCORES}
  else:
    ratings = [p[2] for p in peers]
    observer = {name: getattr(row, name) for name in OBSERVER_SCORES}
  out = {"agent_id": row.agent_id, "label": row.label, "iteration": row.iteration,
         "question": row.question, "draft_answer": row.draft_answer,
         "target_id": [p[0] for p in peers], "feedback": [p[1] for p in peers], "rating": ratings,
         "revised_answer": row.revised_answer, **observer,
         **{name: getattr(row, name) for name in OBSERVER_REASONS},
         "cls_moral_score_before": 0, "cls_moral_score_after": 0}
  return {name: out[name] for name in OFFICIAL_LOG_FIELDS}


def official_log_path(root: jsonl.PathLike, world_index: int, agent_id: int) -> pathlib.Path:
  return pathlib.Path(root) / f"world_{world_index}" / "external_memory" / f"agent_{agent_id}.jsonl"


def write_official_world(root: jsonl.PathLike, rows: Iterable[TranscriptRow],
                         scores: str = "expected") -> list[pathlib.Path]:
  """Writes `root/world_<world_index>/external_memory/agent_<agent_id>.jsonl` (rows by round),
  atomically; returns the files written, sorted."""
  logs: dict[pathlib.Path, list[TranscriptRow]] = {}
  for row in rows:
    logs.setdefault(official_log_path(root, row.world_index, row.agent_id), []).append(row)
  for path, agent_rows in logs.items():
    agent_rows.sort(key=lambda r: r.round)
    items = [to_official_row(r, scores) for r in agent_rows]
    jsonl.atomic_write_text(path, json.dumps(items, ensure_ascii=False, indent=2))
  return sorted(logs)


# ----------------------------------------------------------------------------------------------
# Import of per-agent logs.

@dataclasses.dataclass
class ImportCounts:
  """What the sentinel policy did: peers (rating 8) and rows (observer -1) dropped, values clipped."""
  rows_read: int = 0
  peers_dropped: int = 0
  rows_dropped: int = 0
  values_clipped: int = 0


def _number(value) -> float | None:
  """An official rating: a number or a digit string ('5', '8'); None if it is neither."""
  if isinstance(value, bool):
    return None
  if isinstance(value, (int, float)):
    return float(value) if math.isfinite(value) else None
  if isinstance(value, str):
    try:
      number = float(value.strip())
    except ValueError:
      return None
    return number if math.isfinite(number) else None
  return None


def _check_official_row(obj, where: str) -> None:
  if not isinstance(obj, dict):
    raise DataFormatError(f"{where}: an official log row must be a JSON object, got {type(obj).__name__}")
  for name in OFFICIAL_LOG_FIELDS[:17]:
    if name not in obj:
      raise DataFormatError(f"{where}: missing field {name!r}")
  for name in ("question", "draft_answer", "revised_answer", "label") + OBSERVER_REASONS:
    if not isinstance(obj[name], str):
      raise DataFormatError(f"{where}: field {name!r} must be a string, got {obj[name]!r}")
  for name in ("agent_id", "iteration"):
    if isinstance(obj[name], bool) or not isinstance(obj[name], int):
      raise DataFormatError(f"{where}: field {name!r} must be an integer, got {obj[name]!r}")
  for name in ("target_id", "feedback", "rating"):
    if not isinstance(obj[name], list):
      raise DataFormatError(f"{where}: field {name!r} must be a list, got {obj[name]!r}")
  if not all(isinstance(t, int) and not isinstance(t, bool) for t in obj["target_id"]):
    raise DataFormatError(f"{where}: field 'target_id' must hold integers, got {obj['target_id']!r}")
  if not all(isinstance(f, str) for f in obj["feedback"]):
    raise DataFormatError(f"{where}: field 'feedback' must hold strings, got {obj['feedback']!r}")
  for i, r in enumerate(obj["rating"]):
    if _number(r) is None:
      raise DataFormatError(f"{where}: field 'rating'[{i}] must be a number or a digit string, got {r!r}")
  n = len(obj["rating"])
  for name in ("target_id", "feedback"):
    if len(obj[name]) != n:
      raise DataFormatError(f"{where}: field {name!r} has {len(obj[name])} entries but 'rating' has {n}")
  for name in OBSERVER_SCORES:
    if _number(obj[name]) is None or isinstance(obj[name], str):
      raise DataFormatError(f"{where}: field {name!r} must be a finite number, got {obj[name]!r}")


def read_official_agent_log(path: jsonl.PathLike) -> list[dict[str, Any]]:
  """The rows of one official per-agent log (a JSON list), checked; errors name the file and row."""
  path = pathlib.Path(path)
  try:
    items = json.loads(path.read_text(encoding="utf-8"))
  except json.JSONDecodeError as e:
    raise DataFormatError(f"{path}:{e.lineno}: malformed JSON ({e.msg} at column {e.colno})") from None
  if not isinstance(items, list):
    raise DataFormatError(f"{path}: an official agent log must be a JSON list of rows, got {type(items).__name__}")
  for i, obj in enumerate(items):
    _check_official_row(obj, f"{path}: row {i}")
  return items


def _one_hot(rating: float, scale: int) -> tuple[int, tuple[float, ...]]:
  top = min(max(int(round(rating)), 1), scale)
  return top, tuple(1.0 if i == top else 0.0 for i in range(1, scale + 1))


def official_rows_to_transcript(items: Iterable[dict[str, Any]], *, world: str = "official", world_index: int = 0,
                                seed: int = 0, agent_model: str = "official", observer_model: str = "official",
                                sentinels: str = "drop", scale: int = DEFAULT_SCALE, where: str = "",
                                counts: ImportCounts | None = None) -> list[TranscriptRow]:
  """Official log rows → TranscriptRows (module doc); `counts`, if given, is filled in."""
  if sentinels not in SENTINEL_POLICIES:
    raise ValueError(f"sentinels must be one of {SENTINEL_POLICIES}, got {sentinels!r}")
  counts = ImportCounts() if counts is None else counts
  clip = lambda x: min(max(x, 1.0), float(scale))
  rows = []
  for i, obj in enumerate(items):
    at = f"{where}: row {i}" if where else f"row {i}"
    _check_official_row(obj, at)
    counts.rows_read += 1
    observer = {name: float(obj[name]) for name in OBSERVER_SCORES}
    bad = [name for name, v in observer.items() if v == OBSERVER_SENTINEL]
    if bad and sentinels == "error":
      raise DataFormatError(f"{at}: field {bad[0]!r} is the official sentinel -1 (unparsed observer score)")
    if bad and sentinels == "drop":
      counts.rows_dropped += 1
      continue
    if bad:
      counts.values_clipped += len(bad)
      observer = {name: clip(v) if name in bad else v for name, v in observer.items()}
    peers = []
    for target, reason, rating in zip(obj["target_id"], obj["feedback"], obj["rating"]):
      value = _number(rating)
      if value == PEER_SENTINEL and not value <= scale:
        if sentinels == "error":
          raise DataFormatError(f"{at}: a rating is the official sentinel 8 (unparsed peer rating)")
        if sentinels == "drop":
          counts.peers_dropped += 1
          continue
        counts.values_clipped += 1
        value = clip(value)
      peers.append((target, reason, value))
    peers.sort(key=lambda p: -p[2])   # stable: the official order where it is already sorted
    argmax, dists = zip(*[_one_hot(p[2], scale) for p in peers]) if peers else ((), ())
    distribution = {name.replace("score", "distribution"): _one_hot(observer[name], scale)[1]
                    for name in OBSERVER_SCORES}
    try:
      row = TranscriptRow(
          world=world, world_index=world_index, seed=seed, round=obj["iteration"], iteration=obj["iteration"],
          agent_id=obj["agent_id"], label=obj["label"], question=obj["question"],
          draft_answer=obj["draft_answer"], target_id=tuple(p[0] for p in peers),
          feedback=tuple(p[1] for p in peers), rating=tuple(p[2] for p in peers), rating_argmax=tuple(argmax),
          rating_distribution=tuple(dists), revised_answer=obj["revised_answer"],
          **observer, **{name: obj[name] for name in OBSERVER_REASONS}, **distribution,
          memory_used=None, agent_model=agent_model, observer_model=observer_model)
      row.check_scale(scale)
    except DataFormatError as e:
      raise DataFormatError(f"{at}: {e}") from None
    rows.append(row)
  return rows


def official_agent_logs(world_dir: jsonl.PathLike) -> list[pathlib.Path]:
  """The `agent_<id>.jsonl` files of an official world directory (or its `external_memory`), by id.

  (The official `collect_data.py` takes them in `glob` order, which the file system decides.)
  """
  world_dir = pathlib.Path(world_dir)
  directory = world_dir / "external_memory" if (world_dir / "external_memory").is_dir() else world_dir
  if not directory.is_dir():
    raise FileNotFoundError(f"{world_dir}: no such directory")
  files = [p for p in directory.iterdir() if _AGENT_FILE.search(p.name)]
  if not files:
    raise FileNotFoundError(f"{directory}: no agent_<id>.jsonl files")
  return sorted(files, key=lambda p: int(_AGENT_FILE.search(p.name).group(1)))


def read_official_world(world_dir: jsonl.PathLike, **kwargs) -> tuple[list[TranscriptRow], ImportCounts]:
  """Every agent log of one official world as TranscriptRows (agent by agent; kwargs as
  `official_rows_to_transcript`), and the sentinel counts."""
  counts = ImportCounts()
  rows = []
  for path in official_agent_logs(world_dir):
    rows += official_rows_to_transcript(read_official_agent_log(path), where=str(path), counts=counts, **kwargs)
  return rows, counts


# ----------------------------------------------------------------------------------------------
# Prior memories.

def one_turn(response: str) -> str:
  """`sample_init_data(one_turn_only=True)`: up to 'Friend:', then what follows 'You:'."""
  if response.find("Friend:") != -1:
    response = response[:response.find("Friend:")].strip()
  if response.find("You:") != -1:
    response = response[response.find("You:") + 4:].strip()
  return response


def _prior_items(path: pathlib.Path) -> list[tuple[Any, str]]:
  text = path.read_text(encoding="utf-8")
  try:
    items = json.loads(text)
  except json.JSONDecodeError:
    items = None
  if isinstance(items, list):
    return [(item, f"{path}: item {i}") for i, item in enumerate(items)]
  out = []
  for lineno, line in enumerate(text.splitlines(), start=1):
    if not line.strip():
      continue
    try:
      out.append((json.loads(line), f"{path}:{lineno}"))
    except json.JSONDecodeError as e:
      raise DataFormatError(f"{path}:{lineno}: malformed JSON ({e.msg} at column {e.colno}); expected a "
                            f"JSON list or JSON Lines of {{question, response, morality_label}}") from None
  return out


def read_labeled_prior(path: jsonl.PathLike, one_turn_only: bool = True) -> dict[str, list[tuple[str, str]]]:
  """`labeled_prior.jsonl` → {'good': [(question, answer)], 'bad': [...]} (module doc).

  Rows with another `morality_label` are skipped (the official sampler never reads them).
  """
  path = pathlib.Path(path)
  pools: dict[str, dict[str, str]] = {label: {} for label in LABELS}
  for obj, where in _prior_items(path):
    if not isinstance(obj, dict):
      raise DataFormatError(f"{where}: a prior memory must be a JSON object, got {type(obj).__name__}")
    for name in ("question", "response", "morality_label"):
      if not isinstance(obj.get(name), str):
        raise DataFormatError(f"{where}: field {name!r} must be a string, got {obj.get(name)!r}")
    if obj["morality_label"] not in pools:
      continue
    answer = one_turn(obj["response"]) if one_turn_only else obj["response"]
    pools[obj["morality_label"]][obj["question"]] = answer
  return {label: list(pool.items()) for label, pool in pools.items()}
