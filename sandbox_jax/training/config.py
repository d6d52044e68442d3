"""TrainConfig: the `train` section of a run config, with the official Stable Alignment defaults.

Every field is a config key `train.<field>`; `TrainConfig.from_dict(config.train)` accepts an
ml_collections ConfigDict or any mapping, rejects unknown keys, and validation errors name the key.

Defaults follow the official code and paper (DESIGN §8): margin M = 1, ratio λ = 0.2, rating scale
S = 7, up to 3 responses per group, AdamW at lr 2e-5 with 3% linear warm-up and cosine decay,
global-norm clipping at 1.0 and no weight decay (the Hugging Face Trainer defaults the official
script ran with).

Batches: `groups_per_batch` is the *global* number of groups per optimizer step (across all
processes and devices); `accum_steps` micro-batches of `groups_per_batch / accum_steps` groups
each are accumulated inside one jitted step. Neither changes the loss: it is the mean over the
valid groups of the whole batch.

Stages: `schedule='staged'` runs imitation → self_critic → realignment, each for its
`stage_steps[stage]` optimizer steps on its own record type; `schedule='mixed'` runs one stage of
all groups shuffled together for `stage_steps['mixed']` steps (default: the sum of the three
budgets). A stage without groups or without steps is skipped. The learning-rate schedule spans the
whole run (all stages), as one fine-tuning run with a changing data mix.
"""

import dataclasses
from collections.abc import Mapping
from typing import Any

from sandbox_jax.data.schemas import DEFAULT_SCALE

LOSSES = ("stable_alignment", "sft", "dpo", "rrhf")
STAGE_NAMES = ("imitation", "self_critic", "realignment")
SCHEDULES = ("staged", "mixed")


def _error(key: str, message: str) -> ValueError:
  return ValueError(f"config key train.{key}: {message}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  # -- loss --------------------------------------------------------------------------------------
  loss: str = "stable_alignment"      # one of LOSSES
  margin: float = 1.0                 # M
  ratio: float = 0.2                  # λ
  scale: float = float(DEFAULT_SCALE)  # S, the rating scale (scores must lie in [1, S])
  aggregation: str = "mean"           # 'mean' or 'max' (official max_flow) over worse responses
  per_pair_hinge: bool = False        # Σ_i max(0, d_i) instead of max(0, AGG_i d_i)
  dpo_beta: float = 0.1
  rrhf_weight: float = 1.0
  # -- optimizer ---------------------------------------------------------------------------------
  lr: float = 2e-5
  warmup_ratio: float = 0.03          # linear warm-up over ceil(ratio · total steps), then cosine to 0
  weight_decay: float = 0.0           # AdamW decoupled decay (never on norms and biases)
  adam_b1: float = 0.9
  adam_b2: float = 0.999
  adam_eps: float = 1e-8
  grad_clip: float = 1.0              # global-norm clipping; 0 disables it
  # -- batches -----------------------------------------------------------------------------------
  groups_per_batch: int = 8           # global groups per optimizer step
  accum_steps: int = 1                # micro-batches per optimizer step
  max_responses: int = 3              # R: responses per group (best + a sample of the others)
  max_len: int = 512                  # T: tokens per response row (prompt + response)
  logits_chunk: int = 0               # >0: the loss makes logits this many positions at a time
  append_eos: bool = True             # end each response row with eos (official: False, none appended)
  # -- stages ------------------------------------------------------------------------------------
  schedule: str = "staged"            # 'staged' or 'mixed'
  stage_steps: tuple[tuple[str, int], ...] = (("imitation", 100), ("self_critic", 100),
                                              ("realignment", 100))
  # -- bookkeeping -------------------------------------------------------------------------------
  checkpoint_every: int = 100         # also at every stage end and at the end of training
  keep_checkpoints: int = 2
  eval_every: int = 0                 # call the eval hook every this many steps (0: never)
  seed: int = 0                       # data order and response sampling; the train state's RNG
  export: bool = True                 # write <workdir>/export (HF format) when training completes

  def __post_init__(self):
    if isinstance(self.stage_steps, Mapping):
      object.__setattr__(self, "stage_steps", tuple((str(k), v) for k, v in self.stage_steps.items()))
    else:
      object.__setattr__(self, "stage_steps", tuple((str(k), v) for k, v in self.stage_steps))
    self._validate()

  def _validate(self):
    if self.loss not in LOSSES:
      raise _error("loss", f"{self.loss!r} is not one of {LOSSES}")
    if self.aggregation not in ("mean", "max"):
      raise _error("aggregation", f"{self.aggregation!r} is not 'mean' or 'max'")
    if self.schedule not in SCHEDULES:
      raise _error("schedule", f"{self.schedule!r} is not one of {SCHEDULES}")
    positive = ("scale", "lr", "dpo_beta", "adam_eps", "groups_per_batch", "accum_steps", "max_responses",
                "checkpoint_every", "keep_checkpoints")
    for key in positive:
      if not getattr(self, key) > 0:
        raise _error(key, f"must be > 0, got {getattr(self, key)!r}")
    for key in ("margin", "ratio", "rrhf_weight", "weight_decay", "grad_clip", "eval_every", "logits_chunk"):
      if not getattr(self, key) >= 0:
        raise _error(key, f"must be >= 0, got {getattr(self, key)!r}")
    for key in ("groups_per_batch", "accum_steps", "max_responses", "max_len", "logits_chunk", "checkpoint_every",
                "keep_checkpoints", "eval_every", "seed"):
      if isinstance(getattr(self, key), bool) or not isinstance(getattr(self, key), int):
        raise _error(key, f"must be an integer, got {getattr(self, key)!r}")
    if not 0 <= self.warmup_ratio < 1:
      raise _error("warmup_ratio", f"must be in [0, 1), got {self.warmup_ratio!r}")
    for key in ("adam_b1", "adam_b2"):
      if not 0 <= getattr(self, key) < 1:
        raise _error(key, f"must be in [0, 1), got {getattr(self, key)!r}")
    if not isinstance(self.append_eos, bool):
      raise _error("append_eos", f"must be a bool, got {self.append_eos!r}")
    if self.max_len < 2:
      raise _error("max_len", f"must be >= 2, got {self.max_len}")
    if self.groups_per_batch % self.accum_steps:
      raise _error("accum_steps", f"{self.accum_steps} does not divide train.groups_per_batch="
                   f"{self.groups_per_batch}")
    known = STAGE_NAMES + ("mixed",)
    names = [name for name, _ in self.stage_steps]
    if len(set(names)) != len(names):
      raise _error("stage_steps", f"a stage is listed twice: {names}")
    for name, steps in self.stage_steps:
      if name not in known:
        raise _error("stage_steps", f"unknown stage {name!r}; stages are {known}")
      if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise _error("stage_steps", f"{name}={steps!r} must be a non-negative integer")
    if self.schedule == "staged" and "mixed" in names:
      raise _error("stage_steps", "'mixed' needs train.schedule='mixed'")
    if self.total_steps == 0:
      raise _error("stage_steps", f"no steps to train: {dict(self.stage_steps)}")

  def steps_of(self, stage: str) -> int:
    """The step budget of a stage ('mixed' defaults to the sum of the three stage budgets)."""
    budget = dict(self.stage_steps)
    if stage == "mixed" and "mixed" not in budget:
      return sum(budget.get(name, 0) for name in STAGE_NAMES)
    return budget.get(stage, 0)

  @property
  def total_steps(self) -> int:
    """Upper bound of the run's steps (stages without groups are skipped later)."""
    if self.schedule == "mixed":
      return self.steps_of("mixed")
    return sum(self.steps_of(name) for name in STAGE_NAMES)

  @classmethod
  def from_dict(cls, values: Any) -> "TrainConfig":
    """From a mapping or an ml_collections ConfigDict (`config.train`); unknown keys are errors."""
    if isinstance(values, cls):
      return values
    if hasattr(values, "to_dict"):
      values = values.to_dict()
    values = dict(values)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
      raise ValueError(f"config key train: unknown keys {unknown}; known: {sorted(names)}")
    if "stage_steps" in values and not isinstance(values["stage_steps"], Mapping):
      values["stage_steps"] = tuple(tuple(item) for item in values["stage_steps"])
    return cls(**values)

  def to_dict(self) -> dict[str, Any]:
    out = dataclasses.asdict(self)
    out["stage_steps"] = dict(self.stage_steps)
    return out
