"""The released `sandbox_v1.json` format of the official Stable-Alignment repository.

The file is one JSON list (pandas `to_json(orient='records', indent=2)` in the official
`collect_data.py`) of rated groups:

    [{"query": "<short Alpaca prompt>", "responses": [str, ...], "scores": [number, ...],
      "models": [str, ...]}, ...]

`query` is the rendered prompt (`alpaca_prompt(instruction, input)`); the official trainer
(`stable_alignment/alignment.py`) tokenizes `query + response` as one string and reads only
`query`, `responses` and `scores` (casting each score with `int()`). We write one optional extra
field, `provenance: {type, responses: [per-response provenance or null]}` (`Group.to_dict`); the
official loader ignores extra columns, so files we write still load there, and our groups
round-trip exactly. Scores are written as given (floats for our expected ratings).

The official file does not say which of the three record types a group is; `infer_record_type`
recovers it from the instruction suffixes (both spellings of the revision prompt).

Sentinel scores. The official simulation parses ratings from generated text; a peer rating it cannot
parse becomes 8 and an observer score it cannot parse becomes -1 (`stable_alignment/sandbox/world.py`),
and `collect_data.py` keeps both as scores. Outside the rating scale they would abort the read, so
`sentinels` decides: `'drop'` (default) removes each response scored 8 or -1 (and a group left
without responses), `'clip'` moves them to the nearest end of the scale, `'error'` rejects them. Other
out-of-scale scores are always errors. `load_sandbox_v1` returns the counts; `read_sandbox_v1` logs
them as a warning.
"""

import dataclasses
import json
import logging
import pathlib

from sandbox_jax.data import jsonl
from sandbox_jax.data.records import CRITIC_SUFFIX, OFFICIAL_REVISION_SUFFIX, REVISION_SUFFIX
from sandbox_jax.data.schemas import DEFAULT_SCALE, DataFormatError, Group, RecordType


SENTINEL_SCORES = (8.0, -1.0)   # official: unparsed peer rating, unparsed observer score
SENTINEL_POLICIES = ("drop", "clip", "error")
_log = logging.getLogger(__name__)


@dataclasses.dataclass
class SentinelCounts:
  """What the sentinel policy did to a file: responses dropped or clipped, groups left empty."""
  responses_dropped: int = 0
  responses_clipped: int = 0
  groups_dropped: int = 0

  def __bool__(self) -> bool:
    return bool(self.responses_dropped or self.responses_clipped or self.groups_dropped)


def _apply_sentinels(item, scale: float, policy: str, counts: SentinelCounts):
  """The item with sentinel scores dropped or clipped (None: group dropped); others untouched."""
  if policy == "error" or not isinstance(item, dict) or not isinstance(item.get("scores"), list):
    return item
  scores = item["scores"]
  hit = [i for i, s in enumerate(scores) if isinstance(s, (int, float)) and not isinstance(s, bool)
         and float(s) in SENTINEL_SCORES and not 1 <= s <= scale]
  if not hit:
    return item
  item = dict(item)
  if policy == "clip":
    item["scores"] = [min(max(s, 1), scale) if i in hit else s for i, s in enumerate(scores)]
    counts.responses_clipped += len(hit)
    return item
  keep = [i for i in range(len(scores)) if i not in hit]
  for name in ("responses", "scores", "models"):
    if isinstance(item.get(name), list) and len(item[name]) == len(scores):
      item[name] = [item[name][i] for i in keep]
  extra = item.get("provenance")
  if isinstance(extra, dict) and isinstance(extra.get("responses"), list) and len(extra["responses"]) == len(scores):
    item["provenance"] = dict(extra, responses=[extra["responses"][i] for i in keep])
  counts.responses_dropped += len(hit)
  if not keep:
    counts.groups_dropped += 1
    return None
  return item


def infer_record_type(query: str) -> RecordType:
  """The record type a rendered prompt was built as (see `records`)."""
  if CRITIC_SUFFIX in query:
    return "self_critic"
  if REVISION_SUFFIX in query or OFFICIAL_REVISION_SUFFIX in query:
    return "realignment"
  return "imitation"


def to_sandbox_v1(groups, include_provenance: bool = True) -> list[dict]:
  return [g.to_dict(include_provenance=include_provenance) for g in groups]


def from_sandbox_v1(items, where: str = "", scale: float = DEFAULT_SCALE,
                    infer_types: bool = True, sentinels: str = "drop",
                    counts: SentinelCounts | None = None) -> list[Group]:
  """Parses the JSON list; a group without a stored type gets `infer_record_type(query)`.

  Sentinel scores (8, -1) follow `sentinels` (module doc); `counts`, if given, is filled in.
  """
  if sentinels not in SENTINEL_POLICIES:
    raise ValueError(f"sentinels must be one of {SENTINEL_POLICIES}, got {sentinels!r}")
  if not isinstance(items, list):
    raise DataFormatError(f"{where}: sandbox_v1 data must be a JSON list of groups, "
                          f"got {type(items).__name__}")
  counts = SentinelCounts() if counts is None else counts
  groups = []
  for i, item in enumerate(items):
    item = _apply_sentinels(item, scale, sentinels, counts)
    if item is None:
      continue
    group = Group.from_dict(item, f"{where}: item {i}" if where else f"item {i}", scale)
    if group.type is None and infer_types:
      group = Group(query=group.query, responses=group.responses, scores=group.scores,
                    models=group.models, provenance=group.provenance,
                    type=infer_record_type(group.query))
    groups.append(group)
  return groups


def write_sandbox_v1(path: jsonl.PathLike, groups, include_provenance: bool = True) -> int:
  """Writes the groups as an indented JSON list, atomically; returns the number of groups."""
  items = to_sandbox_v1(groups, include_provenance)
  jsonl.atomic_write_text(path, json.dumps(items, ensure_ascii=False, indent=2) + "\n")
  return len(items)


def load_sandbox_v1(path: jsonl.PathLike, scale: float = DEFAULT_SCALE, infer_types: bool = True,
                    sentinels: str = "drop") -> tuple[list[Group], SentinelCounts]:
  """Reads an official (or our) `sandbox_v1.json`: (groups, what the sentinel policy did).

  Errors name the file and line or item (item numbers count every item of the file).
  """
  path = pathlib.Path(path)
  try:
    items = json.loads(path.read_text(encoding="utf-8"))
  except UnicodeDecodeError as e:
    raise DataFormatError(f"{path}: not valid UTF-8 (byte {e.start + 1} of the file)") from None
  except json.JSONDecodeError as e:
    raise DataFormatError(f"{path}:{e.lineno}: malformed JSON ({e.msg} at column {e.colno})"
                          ) from None
  counts = SentinelCounts()
  return from_sandbox_v1(items, str(path), scale, infer_types, sentinels, counts), counts


def read_sandbox_v1(path: jsonl.PathLike, scale: float = DEFAULT_SCALE,
                    infer_types: bool = True, sentinels: str = "drop") -> list[Group]:
  """`load_sandbox_v1`'s groups; sentinel scores dropped or clipped are logged as a warning."""
  groups, counts = load_sandbox_v1(path, scale, infer_types, sentinels)
  if counts:
    _log.warning("%s: official sentinel scores (8, -1): %d responses dropped, %d clipped, %d groups "
                 "left empty and dropped", path, counts.responses_dropped, counts.responses_clipped,
                 counts.groups_dropped)
  return groups
