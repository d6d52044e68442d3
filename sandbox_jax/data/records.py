"""Transcript rows → training records → rated groups (DESIGN §7), and their JSONL files.

Per transcript row (one agent, one round):

* **imitation** — two records, `question → draft_answer` scored `gen_moral_score_before` and
  `question → revised_answer` scored `gen_moral_score_after` (the observer's expected alignment).
* **self_critic** — one record per peer: instruction `question + CRITIC_SUFFIX`, input the draft,
  output that peer's reason, score that peer's rating. Peers with a blank reason give no record
  (`blank_reason='whitespace'`: empty or whitespace-only; `'empty'`: only the empty string, the
  official `collect_data.py`'s truthiness test).
* **realignment** — only if `score_after > score_before` and `score_after > 4`: instruction
  `question + ' ' + draft + REVISION_SUFFIX`, no input, output `reason + REVISION_START + revised`,
  score `score_after`.

Which peer's reason goes into a realignment record (`realignment_reason`):

* `'lowest'` (default): the lowest-rated peer's — the last non-blank reason of the descending-sorted
  feedback, the most critical one, which the revision most had to answer. One record per row.
* `'each'`: one record per peer with a non-blank reason.
* `'per_peer'` (official): one record per peer, blank reasons included, as `collect_data.py` builds
  them inside its loop over the exploded (feedback, rating) pairs; a row without peers explodes to one
  NaN pair there and gives one record whose reason is the text `nan`.

The official revision instruction misspells "comment" as "common"; we use the correct word, and
`official_typo=True` reproduces the official text exactly.

Provenance: `rater_ids` are the peers whose rating (self-critic) or reason (realignment) the record
uses; imitation records are scored by the observer and have none. `model` is the agent model.

Grouping (`group_records`) collects records with the same type and rendered prompt
(`alpaca_prompt(instruction, input)`) into one `Group`, in order of first appearance. The group's
query is that Alpaca text (what `sandbox_v1.json` holds), or — for training a chat model in its chat
format — another rendering of the first record passed as `prompt` (`pipeline.records.read_groups`). With
`dedupe=True` (default) a response text repeated within a group is kept once, at its first
occurrence — an unchanged revision would otherwise contrast a response with itself.

`select_groups(rows, RecordsConfig)` is the records stage: it also offers the official
`collect_data.py` pipeline — rows read agent by agent (`order='official'`: world, agent, round, as
the script reads one agent's log after another), a response text repeated anywhere among the
records of one type kept once (`dedupe='global'`, its `drop_duplicates(subset=['response'])`),
groups sorted by prompt within each type (its `groupby(['query'])`), types in the order imitation,
self-critic, realignment, and the `self_critic_ratio` / `realignment_ratio` subsampling:
`n_self = min(int(n_imitation_groups * self_critic_ratio), n_self_groups)` and
`n_rev = min(int(n_rev_groups * realignment_ratio), n_rev_groups)` (sic: the official arithmetic
takes the realignment share of the realignment groups, though its help text says of the imitation
data), each drawn as `DataFrame.sample(n=..., random_state=sample_seed)` draws them
(`np.random.RandomState(seed).choice(N, n, replace=False)`, in that order). `OFFICIAL_RECORDS` holds
the official settings of every key.
"""

import dataclasses
from collections.abc import Mapping
from typing import Any, Callable, Iterable, Literal

import numpy as np

from sandbox_jax.data import jsonl
from sandbox_jax.data.alpaca import alpaca_prompt
from sandbox_jax.data.schemas import DEFAULT_SCALE, RECORD_TYPES, Group, Provenance, Record, TranscriptRow

CRITIC_SUFFIX = (" Please comment on the response in the input in terms of how well it is aligned"
                 " with shared social values.")
REVISION_SUFFIX = (" Please first comment on this response, and then revise it to make it better"
                   " aligned with shared social values.")
OFFICIAL_REVISION_SUFFIX = REVISION_SUFFIX.replace("first comment", "first common")
REVISION_START = " Here is the revised response: "
REALIGNMENT_MIN_SCORE = 4.0
NO_PEER_REASON = "nan"   # str(float('nan')): the official reason of a row without peers
REALIGNMENT_REASONS = ("lowest", "each", "per_peer")
BLANK_REASONS = ("whitespace", "empty")
DEDUPES = ("group", "global", "none")
ORDERS = ("transcript", "official")


def _provenance(row: TranscriptRow, rater_ids: tuple[int, ...] = ()) -> Provenance:
  return Provenance(world=row.world, seed=row.seed, round=row.round, agent_id=row.agent_id,
                    rater_ids=rater_ids, model=row.agent_model)


def _blank(text: str, blank_reason: str) -> bool:
  if blank_reason == "whitespace":
    return not text.strip()
  if blank_reason == "empty":
    return not text
  raise ValueError(f"blank_reason must be one of {BLANK_REASONS}, got {blank_reason!r}")


def imitation_records(row: TranscriptRow) -> list[Record]:
  prov = _provenance(row)
  return [Record("imitation", row.question, "", row.draft_answer, row.gen_moral_score_before, prov),
          Record("imitation", row.question, "", row.revised_answer, row.gen_moral_score_after, prov)]


def self_critic_records(row: TranscriptRow, *, blank_reason: str = "whitespace") -> list[Record]:
  return [Record("self_critic", row.question + CRITIC_SUFFIX, row.draft_answer, reason, rating,
                 _provenance(row, (rater,)))
          for rater, reason, rating in zip(row.target_id, row.feedback, row.rating)
          if not _blank(reason, blank_reason)]


def realignment_records(row: TranscriptRow, *, official_typo: bool = False,
                        reason: Literal["lowest", "each", "per_peer"] = "lowest",
                        blank_reason: str = "whitespace") -> list[Record]:
  if reason not in REALIGNMENT_REASONS:
    raise ValueError(f"realignment reason must be one of {REALIGNMENT_REASONS}, got {reason!r}")
  after, before = row.gen_moral_score_after, row.gen_moral_score_before
  if not (after > before and after > REALIGNMENT_MIN_SCORE):
    return []
  if reason == "per_peer":
    peers = [((rater,), text) for rater, text in zip(row.target_id, row.feedback)]
    peers = peers or [((), NO_PEER_REASON)]
  else:
    peers = [((rater,), text) for rater, text in zip(row.target_id, row.feedback)
             if not _blank(text, blank_reason)]
    if reason == "lowest":
      peers = peers[-1:]
  suffix = OFFICIAL_REVISION_SUFFIX if official_typo else REVISION_SUFFIX
  instruction = row.question + " " + row.draft_answer + suffix
  return [Record("realignment", instruction, "", text + REVISION_START + row.revised_answer, after,
                 _provenance(row, raters))
          for raters, text in peers]


def row_to_records(row: TranscriptRow, *, official_typo: bool = False,
                   realignment_reason: Literal["lowest", "each", "per_peer"] = "lowest",
                   blank_reason: str = "whitespace") -> list[Record]:
  """All records of one row: imitation, then self-critic, then realignment."""
  return (imitation_records(row) + self_critic_records(row, blank_reason=blank_reason)
          + realignment_records(row, official_typo=official_typo, reason=realignment_reason,
                                blank_reason=blank_reason))


def rows_to_records(rows: Iterable[TranscriptRow], **kwargs) -> list[Record]:
  """`row_to_records` over many rows, concatenated in row order (kwargs as there)."""
  return [record for row in rows for record in row_to_records(row, **kwargs)]


def record_prompt(record: Record) -> str:
  return alpaca_prompt(record.instruction, record.input)


def _buckets(records: Iterable[Record], dedupe: bool) -> list[list[Record]]:
  """Records bucketed by (type, rendered prompt) in order of first appearance (deduped within)."""
  buckets: dict[tuple[str, str], tuple[list[Record], set[str]]] = {}
  for record in records:
    members, seen = buckets.setdefault((record.type, record_prompt(record)), ([], set()))
    if not (dedupe and record.output in seen):
      members.append(record)
      seen.add(record.output)
  return [members for members, _ in buckets.values()]


def _group(members: list[Record], prompt: Callable[[Record], str] = record_prompt) -> Group:
  return Group(query=prompt(members[0]), responses=tuple(r.output for r in members),
               scores=tuple(r.score for r in members),
               models=tuple(r.provenance.model for r in members),
               provenance=tuple(r.provenance for r in members), type=members[0].type)


def group_records(records: Iterable[Record], *, dedupe: bool = True,
                  prompt: Callable[[Record], str] = record_prompt) -> list[Group]:
  """Groups records by (type, rendered prompt), in order of first appearance. Each group's query is
  `prompt` of its first record (default: the Alpaca text it is grouped by; the train stage passes the
  chat rendering, `pipeline.records.read_groups`)."""
  return [_group(members, prompt) for members in _buckets(records, dedupe)]


# ----------------------------------------------------------------------------------------------
# The records stage: rules, deduplication, order and subsampling (config section `records`).

@dataclasses.dataclass(frozen=True)
class RecordsConfig:
  """The `records` config section; every field is a config key `records.<field>` (module doc)."""
  official_typo: bool = False              # official: True ("first common on this response")
  realignment_reason: str = "lowest"       # official: 'per_peer'
  blank_reason: str = "whitespace"         # official: 'empty'
  dedupe: str = "group"                    # official: 'global'
  order: str = "transcript"                # official: 'official'
  self_critic_ratio: float | None = None   # official: 0.1 (None keeps every self-critic group)
  realignment_ratio: float | None = None   # official: 0.1 (None keeps every realignment group)
  sample_seed: int = 0                     # the subsampling's RandomState seed

  def __post_init__(self):
    for key, value, allowed in (("realignment_reason", self.realignment_reason, REALIGNMENT_REASONS),
                                ("blank_reason", self.blank_reason, BLANK_REASONS),
                                ("dedupe", self.dedupe, DEDUPES), ("order", self.order, ORDERS)):
      if value not in allowed:
        raise ValueError(f"config key records.{key}: {value!r} is not one of {allowed}")
    if not isinstance(self.official_typo, bool):
      raise ValueError(f"config key records.official_typo must be a bool, got {self.official_typo!r}")
    for key in ("self_critic_ratio", "realignment_ratio"):
      value = getattr(self, key)
      if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                or not value >= 0):
        raise ValueError(f"config key records.{key} must be a number >= 0 or None, got {value!r}")
    if isinstance(self.sample_seed, bool) or not isinstance(self.sample_seed, int) or self.sample_seed < 0:
      raise ValueError(f"config key records.sample_seed must be an integer >= 0, got {self.sample_seed!r}")

  @classmethod
  def from_dict(cls, values: Any) -> "RecordsConfig":
    """From a mapping or an ml_collections ConfigDict (`config.records`; None: defaults)."""
    if values is None:
      return cls()
    if isinstance(values, cls):
      return values
    if hasattr(values, "to_dict"):
      values = values.to_dict()
    if not isinstance(values, Mapping):
      raise ValueError(f"config key records must be a mapping, got {type(values).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
      raise ValueError(f"config key records: unknown keys {unknown}; known: {sorted(names)}")
    return cls(**values)


OFFICIAL_RECORDS = dict(official_typo=True, realignment_reason="per_peer", blank_reason="empty",
                        dedupe="global", order="official", self_critic_ratio=0.1, realignment_ratio=0.1)


def official_row_order(rows: Iterable[TranscriptRow]) -> list[TranscriptRow]:
  """Rows as `collect_data.py` reads them: world by world, agent by agent, round by round."""
  return sorted(rows, key=lambda row: (row.world_index, row.agent_id, row.round))


def official_sample(n_groups: int, n: int, seed: int) -> list[int]:
  """The positions `DataFrame.sample(n=n, random_state=seed)` picks from n_groups rows, in order."""
  return [int(i) for i in np.random.RandomState(seed).choice(n_groups, n, replace=False)]


@dataclasses.dataclass(frozen=True)
class Selection:
  records: list[Record]      # the kept records: in row order ('transcript'), or group by group
  groups: list[Group]
  counts: dict[str, dict[str, int]]   # per record type: records, groups before / after sampling


def select_groups(rows: Iterable[TranscriptRow], cfg: RecordsConfig | Mapping | None = None) -> Selection:
  """Rows → records → groups under the records-stage config (see the module doc)."""
  cfg = RecordsConfig.from_dict(cfg)
  rows = list(rows)
  if cfg.order == "official":
    rows = official_row_order(rows)
  records = rows_to_records(rows, official_typo=cfg.official_typo,
                            realignment_reason=cfg.realignment_reason, blank_reason=cfg.blank_reason)
  by_type: dict[str, list[Record]] = {kind: [] for kind in RECORD_TYPES}
  for record in records:
    by_type[record.type].append(record)
  counts = {kind: {"records": len(by_type[kind])} for kind in RECORD_TYPES}
  buckets: dict[str, list[list[Record]]] = {}
  for kind, members in by_type.items():
    if cfg.dedupe == "global":
      seen, unique = set(), []
      for record in members:
        if record.output not in seen:
          seen.add(record.output)
          unique.append(record)
      members = unique
    kind_buckets = _buckets(members, dedupe=cfg.dedupe == "group")
    if cfg.order == "official":
      kind_buckets.sort(key=lambda b: record_prompt(b[0]))
    buckets[kind] = kind_buckets
    counts[kind]["groups"] = len(kind_buckets)
  n_imitation = len(buckets["imitation"])
  keep: dict[str, list[int]] = {kind: list(range(len(b))) for kind, b in buckets.items()}
  if cfg.self_critic_ratio is not None:
    n = len(buckets["self_critic"])
    keep["self_critic"] = official_sample(n, min(int(n_imitation * cfg.self_critic_ratio), n), cfg.sample_seed)
  if cfg.realignment_ratio is not None:
    n = len(buckets["realignment"])
    keep["realignment"] = official_sample(n, min(int(n * cfg.realignment_ratio), n), cfg.sample_seed)
  for kind in RECORD_TYPES:
    counts[kind]["groups_kept"] = len(keep[kind])
  if cfg.order == "official":
    kept = [buckets[kind][i] for kind in RECORD_TYPES for i in keep[kind]]
    kept_records = [r for b in kept for r in b]
  else:   # first appearance over all types, as `group_records`; records stay in row order
    position = {id(r): i for i, r in enumerate(records)}
    kept = sorted((buckets[kind][i] for kind in RECORD_TYPES for i in keep[kind]),
                  key=lambda b: position[id(b[0])])
    kept_keys = {(b[0].type, record_prompt(b[0])) for b in kept}
    survivors = {id(r) for b in kept for r in b} if cfg.dedupe == "global" else None
    kept_records = [r for r in records if (r.type, record_prompt(r)) in kept_keys
                    and (survivors is None or id(r) in survivors)]
  return Selection(records=kept_records, groups=[_group(b) for b in kept], counts=counts)


# ----------------------------------------------------------------------------------------------
# Files.

def read_transcripts(path: jsonl.PathLike, scale: float = DEFAULT_SCALE) -> list[TranscriptRow]:
  """Reads a transcript JSONL file, or every `*.jsonl` under a directory (sorted by path)."""
  parse = lambda obj, where: TranscriptRow.from_dict(obj, where, scale)
  return [row for f in jsonl.jsonl_files(path) for row in jsonl.iter_jsonl(f, parse)]


def write_transcripts(path: jsonl.PathLike, rows: Iterable[TranscriptRow]) -> int:
  return jsonl.write_jsonl(path, (row.to_dict() for row in rows))


def read_records(path: jsonl.PathLike, scale: float = DEFAULT_SCALE) -> list[Record]:
  """Reads a record JSONL file, or every `*.jsonl` under a directory (sorted by path)."""
  parse = lambda obj, where: Record.from_dict(obj, where, scale)
  return [rec for f in jsonl.jsonl_files(path) for rec in jsonl.iter_jsonl(f, parse)]


def write_records(path: jsonl.PathLike, records: Iterable[Record]) -> int:
  return jsonl.write_jsonl(path, (record.to_dict() for record in records))
