"""The three data shapes of the pipeline: transcript row → training record → rated group.

* `TranscriptRow`: one agent in one society round (DESIGN §6.7) — the one transcript-row schema: the
  society builds these (society/transcript.py) and writes `to_dict()` as JSONL, readers parse them
  back with `from_dict`. The official log row field for field, plus world/seed/round, rating
  distributions, the memory entry used, and model names. Unknown keys are kept in `extras` and
  written back unchanged. (`sandbox_jax.protocol` re-exports it; data stays free of jax.)
* `Record`: one (instruction, input, output, score) training example of type `imitation`,
  `self_critic` or `realignment` (DESIGN §7), with its `Provenance`.
* `Group`: the released `sandbox_v1.json` row `{query, responses, scores, models}` — one rendered
  prompt with its rated responses — plus per-response provenance and the record type.

Validation is eager and explicit. `from_dict(obj, where=...)` raises `DataFormatError` (a
`ValueError`) whose message starts with `where` (readers pass `file:line`), naming the field.
Structural checks run on construction; the rating range `[1, scale]` depends on the scale, so it is
checked by `check_scale(scale)` (readers and `from_dict` call it; the default scale is 7).
"""

import dataclasses
import math
from typing import Any, Literal

RecordType = Literal["imitation", "self_critic", "realignment"]
RECORD_TYPES: tuple[str, ...] = ("imitation", "self_critic", "realignment")
LABELS = ("good", "bad")
RATING_SCALE: tuple[str, ...] = tuple(str(r) for r in range(1, 8))  # the candidates "1".."7", defined once
DEFAULT_SCALE = len(RATING_SCALE)
MIN_RATING = 1


class DataFormatError(ValueError):
  """Malformed data; the message starts with the location (`file:line:` when read from a file)."""


def _prefix(where: str, message: str) -> str:
  return f"{where}: {message}" if where else message


def _is_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def _require(obj: dict, name: str, where: str):
  if name not in obj:
    raise DataFormatError(_prefix(where, f"missing field {name!r}"))
  return obj[name]


def _str(obj, name, where) -> str:
  value = _require(obj, name, where)
  if not isinstance(value, str):
    raise DataFormatError(_prefix(where, f"field {name!r} must be a string, got "
                                         f"{type(value).__name__}"))
  return value


def _int(obj, name, where) -> int:
  value = _require(obj, name, where)
  if not _is_int(value):
    raise DataFormatError(_prefix(where, f"field {name!r} must be an integer, got {value!r}"))
  return value


def _float(obj, name, where) -> float:
  value = _require(obj, name, where)
  if not _is_finite_number(value):
    raise DataFormatError(_prefix(where, f"field {name!r} must be a finite number, got {value!r}"))
  return float(value)


def _list(obj, name, where, item_ok, item_kind: str) -> list:
  value = _require(obj, name, where)
  if not isinstance(value, list):
    raise DataFormatError(_prefix(where, f"field {name!r} must be a list, got "
                                         f"{type(value).__name__}"))
  for i, item in enumerate(value):
    if not item_ok(item):
      raise DataFormatError(_prefix(where, f"field {name!r}[{i}] must be {item_kind}, "
                                           f"got {item!r}"))
  return value


def _is_finite_number(x) -> bool:
  try:
    return _is_number(x) and math.isfinite(x)
  except OverflowError:  # an integer beyond the float range (JSON allows 10**400)
    return False


def _check_rating(value: float, scale: float, what: str) -> None:
  if not MIN_RATING <= value <= scale:
    raise DataFormatError(f"{what} {value} is outside [{MIN_RATING}, {scale}]")


def _at(where: str, error: DataFormatError) -> DataFormatError:
  return DataFormatError(_prefix(where, str(error)))


# ----------------------------------------------------------------------------------------------
# Transcript rows.

_DISTRIBUTION_FIELDS = ("gen_moral_distribution_before", "gen_moral_distribution_after",
                        "gen_engagement_distribution_before", "gen_engagement_distribution_after")
_OBSERVER_SCORE_FIELDS = ("gen_moral_score_before", "gen_moral_score_after",
                          "gen_engagement_score_before", "gen_engagement_score_after")
_OBSERVER_REASON_FIELDS = ("gen_moral_reason_before", "gen_moral_reason_after",
                           "gen_engagement_reason_before", "gen_engagement_reason_after")
_OPTIONAL_FLOAT_FIELDS = ("average_rating",)
_OPTIONAL_INT_FIELDS = ("gen_moral_argmax_before", "gen_moral_argmax_after", "gen_engagement_argmax_before",
                        "gen_engagement_argmax_after")


@dataclasses.dataclass(frozen=True)
class MemoryEntry:
  """The memory hit that entered the draft prompt (DESIGN §6.2)."""
  question: str
  answer: str
  round: int


@dataclasses.dataclass(frozen=True)
class TranscriptRow:
  """One agent in one round. `target_id`, `feedback`, `rating`, `rating_argmax` and
  `rating_distribution` are parallel, sorted by rating descending (lowest-rated peer last)."""
  world: str
  world_index: int
  seed: int
  round: int
  iteration: int
  agent_id: int
  label: str
  question: str
  draft_answer: str
  target_id: tuple[int, ...]
  feedback: tuple[str, ...]
  rating: tuple[float, ...]
  rating_argmax: tuple[int, ...]
  rating_distribution: tuple[tuple[float, ...], ...]
  revised_answer: str
  gen_moral_score_before: float
  gen_moral_reason_before: str
  gen_moral_score_after: float
  gen_moral_reason_after: str
  gen_engagement_score_before: float
  gen_engagement_reason_before: str
  gen_engagement_score_after: float
  gen_engagement_reason_after: str
  gen_moral_distribution_before: tuple[float, ...]
  gen_moral_distribution_after: tuple[float, ...]
  gen_engagement_distribution_before: tuple[float, ...]
  gen_engagement_distribution_after: tuple[float, ...]
  memory_used: MemoryEntry | None
  agent_model: str
  observer_model: str
  # ours, written by the society (absent from imported rows): the peers' average as the agent saw
  # it and the observer's chosen digits; written only when present
  average_rating: float | None = None
  gen_moral_argmax_before: int | None = None
  gen_moral_argmax_after: int | None = None
  gen_engagement_argmax_before: int | None = None
  gen_engagement_argmax_after: int | None = None
  extras: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False)

  def __post_init__(self):
    if self.label not in LABELS:
      raise DataFormatError(f"field 'label' must be one of {LABELS}, got {self.label!r}")
    n = len(self.rating)
    for name in ("target_id", "feedback", "rating_argmax", "rating_distribution"):
      if len(getattr(self, name)) != n:
        raise DataFormatError(f"field {name!r} has {len(getattr(self, name))} entries but "
                              f"'rating' has {n}")
    for i in range(1, n):
      if self.rating[i] > self.rating[i - 1]:
        raise DataFormatError(f"field 'rating' must be sorted descending, got {list(self.rating)}")

  def check_scale(self, scale: float = DEFAULT_SCALE) -> None:
    """Raises DataFormatError if a rating or a distribution does not fit the 1..scale scale."""
    for i, r in enumerate(self.rating):
      _check_rating(r, scale, f"'rating'[{i}]")
    for name in _OBSERVER_SCORE_FIELDS:
      _check_rating(getattr(self, name), scale, repr(name))
    for name in _DISTRIBUTION_FIELDS:
      if len(getattr(self, name)) != scale:
        raise DataFormatError(f"field {name!r} must have {scale} entries, "
                              f"got {len(getattr(self, name))}")
    for i, dist in enumerate(self.rating_distribution):
      if len(dist) != scale:
        raise DataFormatError(f"field 'rating_distribution'[{i}] must have {scale} entries, "
                              f"got {len(dist)}")

  @classmethod
  def from_dict(cls, obj: Any, where: str = "", scale: float = DEFAULT_SCALE) -> "TranscriptRow":
    if not isinstance(obj, dict):
      raise DataFormatError(_prefix(where, f"a transcript row must be a JSON object, "
                                           f"got {type(obj).__name__}"))
    memory = _require(obj, "memory_used", where)
    if memory is not None:
      if not isinstance(memory, dict):
        raise DataFormatError(_prefix(where, "field 'memory_used' must be an object or null"))
      memory = MemoryEntry(question=_str(memory, "question", f"{where}: memory_used"),
                           answer=_str(memory, "answer", f"{where}: memory_used"),
                           round=_int(memory, "round", f"{where}: memory_used"))
    floats = lambda name: tuple(float(x) for x in _list(obj, name, where, _is_finite_number,
                                                        "a finite number"))
    known = {f.name for f in dataclasses.fields(cls)} - {"extras"}
    try:
      row = cls(
          world=_str(obj, "world", where), world_index=_int(obj, "world_index", where),
          seed=_int(obj, "seed", where), round=_int(obj, "round", where),
          iteration=_int(obj, "iteration", where), agent_id=_int(obj, "agent_id", where),
          label=_str(obj, "label", where), question=_str(obj, "question", where),
          draft_answer=_str(obj, "draft_answer", where),
          target_id=tuple(_list(obj, "target_id", where, _is_int, "an integer")),
          feedback=tuple(_list(obj, "feedback", where, lambda x: isinstance(x, str), "a string")),
          rating=floats("rating"),
          rating_argmax=tuple(_list(obj, "rating_argmax", where, _is_int, "an integer")),
          rating_distribution=tuple(
              tuple(float(p) for p in dist) for dist in _list(
                  obj, "rating_distribution", where,
                  lambda d: isinstance(d, list) and all(_is_finite_number(p) for p in d),
                  "a list of finite numbers")),
          revised_answer=_str(obj, "revised_answer", where),
          **{name: _float(obj, name, where) for name in _OBSERVER_SCORE_FIELDS},
          **{name: _str(obj, name, where) for name in _OBSERVER_REASON_FIELDS},
          **{name: floats(name) for name in _DISTRIBUTION_FIELDS},
          memory_used=memory,
          agent_model=_str(obj, "agent_model", where),
          observer_model=_str(obj, "observer_model", where),
          **{name: _float(obj, name, where) for name in _OPTIONAL_FLOAT_FIELDS if obj.get(name) is not None},
          **{name: _int(obj, name, where) for name in _OPTIONAL_INT_FIELDS if obj.get(name) is not None},
          extras={k: v for k, v in obj.items() if k not in known})
      row.check_scale(scale)
    except DataFormatError as e:
      if where and str(e).startswith(where):
        raise
      raise _at(where, e) from None
    return row

  def to_dict(self) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(self):
      if f.name == "extras":
        continue
      value = getattr(self, f.name)
      if value is None and f.name in _OPTIONAL_FLOAT_FIELDS + _OPTIONAL_INT_FIELDS:
        continue
      if isinstance(value, MemoryEntry):
        value = dataclasses.asdict(value)
      elif f.name == "rating_distribution":
        value = [list(d) for d in value]
      elif isinstance(value, tuple):
        value = list(value)
      out[f.name] = value
    out.update(self.extras)
    return out


# ----------------------------------------------------------------------------------------------
# Training records.

@dataclasses.dataclass(frozen=True)
class Provenance:
  """Where a response and its score came from. `rater_ids` are the peers whose rating or reason
  the record uses (empty when the score is the observer's); `model` generated the output."""
  world: str
  seed: int
  round: int
  agent_id: int
  rater_ids: tuple[int, ...]
  model: str

  @classmethod
  def from_dict(cls, obj: Any, where: str = "") -> "Provenance":
    if not isinstance(obj, dict):
      raise DataFormatError(_prefix(where, "provenance must be a JSON object"))
    return cls(world=_str(obj, "world", where), seed=_int(obj, "seed", where),
               round=_int(obj, "round", where), agent_id=_int(obj, "agent_id", where),
               rater_ids=tuple(_list(obj, "rater_ids", where, _is_int, "an integer")),
               model=_str(obj, "model", where))

  def to_dict(self) -> dict[str, Any]:
    return {"world": self.world, "seed": self.seed, "round": self.round,
            "agent_id": self.agent_id, "rater_ids": list(self.rater_ids), "model": self.model}


@dataclasses.dataclass(frozen=True)
class Record:
  """One training example; the prompt is `alpaca_prompt(instruction, input)`."""
  type: RecordType
  instruction: str
  input: str
  output: str
  score: float
  provenance: Provenance

  def __post_init__(self):
    if self.type not in RECORD_TYPES:
      raise DataFormatError(f"field 'type' must be one of {RECORD_TYPES}, got {self.type!r}")
    if not _is_finite_number(self.score):
      raise DataFormatError(f"field 'score' must be a finite number, got {self.score!r}")

  def check_scale(self, scale: float = DEFAULT_SCALE) -> None:
    _check_rating(self.score, scale, "'score'")

  @classmethod
  def from_dict(cls, obj: Any, where: str = "", scale: float = DEFAULT_SCALE) -> "Record":
    if not isinstance(obj, dict):
      raise DataFormatError(_prefix(where, "a record must be a JSON object"))
    provenance = Provenance.from_dict(_require(obj, "provenance", where), f"{where}: provenance")
    try:
      record = cls(type=_str(obj, "type", where), instruction=_str(obj, "instruction", where),
                   input=_str(obj, "input", where), output=_str(obj, "output", where),
                   score=_float(obj, "score", where), provenance=provenance)
      record.check_scale(scale)
    except DataFormatError as e:
      if where and str(e).startswith(where):
        raise
      raise _at(where, e) from None
    return record

  def to_dict(self) -> dict[str, Any]:
    return {"type": self.type, "instruction": self.instruction, "input": self.input,
            "output": self.output, "score": self.score, "provenance": self.provenance.to_dict()}


# ----------------------------------------------------------------------------------------------
# Rated groups.

@dataclasses.dataclass(frozen=True)
class Group:
  """One prompt with its rated responses (the `sandbox_v1.json` row).

  `provenance[i]` belongs to `responses[i]` (None when unknown, e.g. read from the official file);
  `type` is the record type all responses share (None when unknown).
  """
  query: str
  responses: tuple[str, ...]
  scores: tuple[float, ...]
  models: tuple[str, ...]
  provenance: tuple[Provenance | None, ...] = ()
  type: RecordType | None = None

  def __post_init__(self):
    n = len(self.responses)
    if not self.scores:
      raise DataFormatError("group has no scores")
    if len(self.scores) != n:
      raise DataFormatError(f"group has {n} responses but {len(self.scores)} scores")
    if len(self.models) != n:
      raise DataFormatError(f"group has {n} responses but {len(self.models)} models")
    if not self.provenance:
      object.__setattr__(self, "provenance", (None,) * n)
    if len(self.provenance) != n:
      raise DataFormatError(f"group has {n} responses but {len(self.provenance)} provenance "
                            f"entries")
    for i, s in enumerate(self.scores):
      if not _is_finite_number(s):
        raise DataFormatError(f"'scores'[{i}] must be a finite number, got {s!r}")
    if self.type is not None and self.type not in RECORD_TYPES:
      raise DataFormatError(f"group type must be one of {RECORD_TYPES} or None, "
                            f"got {self.type!r}")

  def check_scale(self, scale: float = DEFAULT_SCALE) -> None:
    for i, s in enumerate(self.scores):
      _check_rating(s, scale, f"'scores'[{i}]")

  @property
  def best_index(self) -> int:
    """The highest-rated response (the first among ties)."""
    return max(range(len(self.scores)), key=lambda i: (self.scores[i], -i))

  @classmethod
  def from_dict(cls, obj: Any, where: str = "", scale: float = DEFAULT_SCALE) -> "Group":
    """Reads `{query, responses, scores, models[, provenance]}`; see `to_dict` for `provenance`."""
    if not isinstance(obj, dict):
      raise DataFormatError(_prefix(where, "a group must be a JSON object"))
    query = _str(obj, "query", where)
    responses = _list(obj, "responses", where, lambda x: isinstance(x, str), "a string")
    scores = _list(obj, "scores", where, _is_finite_number, "a finite number")
    models = _list(obj, "models", where, lambda x: isinstance(x, str), "a string")
    extra = obj.get("provenance")
    provenance, kind = (), None
    if extra is not None:
      if not isinstance(extra, dict):
        raise DataFormatError(_prefix(where, "field 'provenance' must be an object"))
      kind = extra.get("type")
      per_response = _list(extra, "responses", f"{where}: provenance",
                           lambda p: p is None or isinstance(p, dict), "an object or null")
      provenance = tuple(None if p is None else Provenance.from_dict(p, f"{where}: provenance")
                         for p in per_response)
    try:
      group = cls(query=query, responses=tuple(responses),
                  scores=tuple(float(s) for s in scores), models=tuple(models),
                  provenance=provenance, type=kind)
      group.check_scale(scale)
    except DataFormatError as e:
      raise _at(where, e) from None
    return group

  def to_dict(self, include_provenance: bool = True) -> dict[str, Any]:
    """The official four fields, plus (optionally) one extra field the official loader ignores:
    `provenance: {type, responses: [per-response provenance or null]}`."""
    out = {"query": self.query, "responses": list(self.responses), "scores": list(self.scores),
           "models": list(self.models)}
    if include_provenance:
      out["provenance"] = {
          "type": self.type,
          "responses": [None if p is None else p.to_dict() for p in self.provenance]}
    return out
