"""What the trainer trains on: rated groups read from disk, checked, and planned into stages.

`load_groups(path)` reads the records stage's output — a directory holding `records.jsonl`
(records with their type and provenance, grouped here by prompt) or `sandbox_v1.json` (the
released group schema) — or one such file. Errors from the data package name the file and line.

`plan_stages` turns groups into the stages the run will train: imitation → self_critic →
realignment with their step budgets, or one `mixed` stage; groups may also come already split
by stage (a mapping stage → groups). Everything is checked before the trainer writes anything.
"""

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

from sandbox_jax.data import (DataFormatError, Group, group_records, mix_stages, read_records,
                              read_sandbox_v1)
from sandbox_jax.data.schemas import DEFAULT_SCALE
from sandbox_jax.training.config import STAGE_NAMES, TrainConfig

RECORDS_FILE = "records.jsonl"
GROUPS_FILE = "sandbox_v1.json"


@dataclasses.dataclass(frozen=True)
class Stage:
  name: str
  groups: list[Group]
  steps: int


def load_groups(path: str | Path, scale: float = float(DEFAULT_SCALE)) -> list[Group]:
  """Rated groups from a records directory or file (see module doc); an empty set is an error."""
  path = Path(path)
  if path.is_dir():
    if (path / RECORDS_FILE).is_file():
      groups = group_records(read_records(path / RECORDS_FILE, scale))
    elif (path / GROUPS_FILE).is_file():
      groups = read_sandbox_v1(path / GROUPS_FILE, scale)
    else:
      raise FileNotFoundError(f"{path}: holds neither {RECORDS_FILE} nor {GROUPS_FILE}")
  elif path.is_file():
    groups = read_sandbox_v1(path, scale) if path.suffix == ".json" else group_records(read_records(path, scale))
  else:
    raise FileNotFoundError(f"{path}: no such file or directory")
  if not groups:
    raise ValueError(f"{path}: the training data set is empty (no rated groups)")
  return groups


def check_groups(groups: Sequence[Group], scale: float, where: str = "groups") -> None:
  """Every group has responses with scores on the rating scale [1, scale]."""
  for i, group in enumerate(groups):
    if not isinstance(group, Group):
      raise TypeError(f"{where}[{i}]: expected a data.Group, got {type(group).__name__}")
    try:
      if not group.responses:
        raise DataFormatError("group has no responses")
      group.check_scale(scale)
    except DataFormatError as e:
      raise DataFormatError(f"{where}[{i}] (query {group.query[:60]!r}): {e} "
                            f"(rating scale: config key train.scale={scale})") from None


def plan_stages(cfg: TrainConfig, data: Sequence[Group] | Mapping[str, Sequence[Group]]) -> list[Stage]:
  """The stages to run, in order, skipping those without groups or steps."""
  if isinstance(data, Mapping):
    unknown = sorted(set(data) - set(STAGE_NAMES + ("mixed",)))
    if unknown:
      raise ValueError(f"groups by stage: unknown stages {unknown}; stages are {STAGE_NAMES} or 'mixed'")
    for name, groups in data.items():
      check_groups(groups, cfg.scale, f"groups[{name!r}]")
    if cfg.schedule == "mixed":
      everything = [g for name in (STAGE_NAMES + ("mixed",)) for g in data.get(name, ())]
      split = mix_stages(everything, "mixed", cfg.seed)
    else:
      if "mixed" in data:
        raise ValueError("groups by stage: 'mixed' groups need config key train.schedule='mixed'")
      split = [(name, list(data.get(name, ()))) for name in STAGE_NAMES]
  else:
    check_groups(data, cfg.scale)
    split = mix_stages(list(data), cfg.schedule, cfg.seed)
  if not any(groups for _, groups in split):
    raise ValueError("the training data set is empty (no rated groups)")
  plan = [Stage(name, groups, cfg.steps_of(name)) for name, groups in split if groups and cfg.steps_of(name) > 0]
  if not plan:
    have = {name: len(groups) for name, groups in split}
    raise ValueError(f"no stage has both groups and steps: groups per stage {have}, "
                     f"config key train.stage_steps={dict(cfg.stage_steps)}")
  return plan
