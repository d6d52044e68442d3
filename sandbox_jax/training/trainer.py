"""The Stable Alignment trainer: three stages as phases of one loop, sharded, resumable after a kill.

  groups ─► stages (imitation → self_critic → realignment, or mixed) ─► BatchFeeder ─► jitted step
     │                                                                                  │
     └─ checked before anything is written                 metrics.jsonl + TensorBoard ◄┤
                                                 orbax checkpoints (state + positions) ◄┤
                                                               <workdir>/export (HF) ◄──┘ at the end

`<workdir>` holds `checkpoints/`, `metrics.jsonl`, `tensorboard/`, `export/` and, for DPO,
`dpo_reference.json`. If `checkpoints/` has a checkpoint the run continues from it: parameters,
optimizer state, RNG, step and every stage iterator's position come back, so on CPU the resumed run
is bitwise the run that was never stopped. Checkpoints are written every `checkpoint_every` steps,
at the end of every stage and at the end; each also holds its step's metrics, which a run resumed
from its final checkpoint (killed before the export) returns as its final metrics.

A non-finite loss or gradient stops the run with an error naming the step and stage; that step's
state is never saved, so the latest checkpoint stays the last good state.

The model passed in is not modified (its parameters are copied into the train state); the trained
model comes back in the result. The model's mesh and logical rules place the state; the batch's
group axis is sharded over the rules' `batch` axes.
"""

import dataclasses
import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh
from tqdm import tqdm

from sandbox_jax.data import PLAIN_ROWS, Group, RowFormat
from sandbox_jax.kill_points import kill_point
from sandbox_jax.model import export_hf_checkpoint
from sandbox_jax.training.checkpoint import CheckpointMismatchError, TrainCheckpoints
from sandbox_jax.training.config import TrainConfig
from sandbox_jax.training.dataset import Stage, load_groups, plan_stages
from sandbox_jax.training.feeding import BatchFeeder
from sandbox_jax.training.metrics import MetricWriter
from sandbox_jax.training.optimizer import learning_rate_schedule, make_optimizer
from sandbox_jax.training.reference import REFERENCE_FILE, load_or_compute_reference
from sandbox_jax.training.state import (abstract_train_state, init_train_state, split_model,
                                        state_shardings)
from sandbox_jax.training.step import make_train_step

EvalFn = Callable[[object, int], Mapping[str, float] | None]

# The TrainConfig fields the jitted step depends on (the learning rate is an input of the step).
STEP_FIELDS = ("loss", "margin", "ratio", "scale", "aggregation", "per_pair_hinge", "dpo_beta", "rrhf_weight",
               "weight_decay", "adam_b1", "adam_b2", "adam_eps", "grad_clip", "accum_steps", "logits_chunk")
_STEPS: dict = {}   # (optimizer, jitted step) by what they depend on; see `_optimizer_and_step`
_MAX_CACHED_STEPS = 4


@dataclasses.dataclass
class TrainResult:
  steps: int                       # global steps done (== total_steps when complete)
  total_steps: int
  stages: list[tuple[str, int]]    # (stage, steps) as run
  final_metrics: dict              # the last step's metrics
  model: object                    # the trained model
  workdir: Path
  metrics_path: Path
  export_dir: Path | None          # <workdir>/export when training completed and train.export


def _stage_summary(stages: Sequence[Stage]) -> list[list]:
  return [[s.name, len(s.groups), s.steps] for s in stages]


def _check_resume(checkpoints: TrainCheckpoints, step: int, meta: dict, stages: Sequence[Stage]) -> None:
  saved = [entry[:2] for entry in meta.get("stages", [])]
  ours = [entry[:2] for entry in _stage_summary(stages)]
  if saved != ours:
    raise CheckpointMismatchError(
        f"{checkpoints.path(step)}: checkpoint of a different data plan: stages (name, groups) {saved} there "
        f"but {ours} here (other records or config key train.schedule); use a new workdir")


def _optimizer_and_step(cfg: TrainConfig, graphdef, rest, params, mesh: Mesh | None):
  """The optimizer and the jitted step, reused when train() runs again in this process with the same
  step-relevant config, model graph and shardings (a resumed or continued run skips compiling)."""
  optimizer = make_optimizer(cfg)
  shardings = state_shardings(params, optimizer, mesh)
  key = (tuple(getattr(cfg, f) for f in STEP_FIELDS), graphdef, jax.tree.structure(shardings),
         tuple(jax.tree.leaves(shardings)))
  if jax.tree.leaves(rest) or key not in _STEPS:   # non-parameter state is baked in: never cached
    step = make_train_step(cfg, graphdef, rest, optimizer, shardings)
    if jax.tree.leaves(rest):
      return optimizer, shardings, step
    while len(_STEPS) >= _MAX_CACHED_STEPS:
      _STEPS.pop(next(iter(_STEPS)))
    _STEPS[key] = (optimizer, step)
  optimizer, step = _STEPS[key]
  return optimizer, shardings, step


def train(config, model, tokenizer, data: Sequence[Group] | Mapping[str, Sequence[Group]] | str | Path,
          workdir: str | Path, mesh: Mesh | None = None, *, eval_fn: EvalFn | None = None,
          progress: bool = True, stop_after: int | None = None, rows: RowFormat = PLAIN_ROWS) -> TrainResult:
  """Trains `model` on rated groups; resumes from `<workdir>/checkpoints` when it holds one.

  Args:
    config: a TrainConfig, or the run config's `train` section (ConfigDict or mapping).
    model: the Transformer to start from (left unmodified).
    tokenizer: encodes prompts and responses (`encode`, `eos_id`, `pad_id`, `bos_id`).
    data: rated groups (split into stages by their record type), groups by stage
      ({'imitation': [...], ...}), or a records directory/file (`load_groups`).
    workdir: where checkpoints, metrics, TensorBoard events and the export go.
    mesh: the mesh the model was built on (default `model.mesh`; None: one device).
    eval_fn: called as `eval_fn(model, step)` every `train.eval_every` steps; a returned mapping of
      numbers is logged as `eval/<name>`. The model is valid only during the call.
    progress: show a tqdm progress bar.
    stop_after: stop (as a kill would, without a final checkpoint) once this many global steps are done.
    rows: how every row frames prompt + response (`data.batching.RowFormat`): plain (the tokenizer's
      bos where it adds one, its eos), or for groups rendered in a chat format the chat's
      (`pipeline.records.training_groups` gives the groups with their row format).
  """
  cfg = TrainConfig.from_dict(config)
  if isinstance(data, (str, Path)):
    data = load_groups(data, cfg.scale)
  stages = plan_stages(cfg, data)
  if mesh is not None and model.mesh is not None and mesh is not model.mesh and mesh != model.mesh:
    raise ValueError("the mesh given to train() is not the mesh the model was built on")
  if mesh is not None and model.mesh is None and mesh.size > 1:
    raise ValueError("the model was built without a mesh; build it with create_model(..., mesh=mesh) "
                     "or load_hf_checkpoint(..., mesh=mesh) to train it sharded")
  mesh = model.mesh if mesh is None else mesh
  total = sum(stage.steps for stage in stages)
  boundaries = set(itertools.accumulate(s.steps for s in stages))
  workdir = Path(workdir)

  graphdef, params, rest = split_model(model)
  optimizer, shardings, step_fn = _optimizer_and_step(cfg, graphdef, rest, params, mesh)
  schedule = learning_rate_schedule(cfg, total)
  feeder = BatchFeeder(cfg, stages, tokenizer, mesh, model.rules, rows=rows)
  checkpoints = TrainCheckpoints(workdir / "checkpoints", max_to_keep=cfg.keep_checkpoints)
  latest = checkpoints.latest_step()
  if latest is None:
    state, step, metrics = None, 0, {}
  else:
    state, meta = checkpoints.restore(latest, abstract_train_state(params, optimizer, shardings), model.cfg)
    _check_resume(checkpoints, latest, meta, stages)
    feeder.load_state_dict(meta["iterators"])
    step = int(meta["step"])
    metrics = dict(meta.get("metrics") or {})   # the last step's, if no step is left to run
  if cfg.loss == "dpo":
    feeder.reference = load_or_compute_reference(
        workdir / REFERENCE_FILE, latest is None, model, tokenizer, [g for s in stages for g in s.groups],
        cfg.max_len, mesh=mesh, rows=cfg.groups_per_batch * cfg.max_responses, append_eos=cfg.append_eos,
        row_format=rows)
  if state is None:
    state = init_train_state(params, optimizer, shardings)

  writer = MetricWriter(workdir, step)
  end = total if stop_after is None else min(total, stop_after)
  bar = tqdm(total=total, initial=step, desc="train", disable=not progress or jax.process_index() != 0)
  try:
    pending = feeder.next(step) if step < end else None
    while step < end:
      stage_index = feeder.stage_index(step)
      stage = stages[stage_index].name
      start = time.perf_counter()
      lr = schedule(step)
      state, device_metrics = step_fn(state, *pending, np.float32(lr))
      positions = feeder.state_dict()
      pending = feeder.next(step + 1) if step + 1 < end else None   # host work overlaps the step
      metrics = {k: float(v) for k, v in jax.device_get(device_metrics).items()}
      bad = [k for k in ("loss", "grad_norm") if not math.isfinite(metrics[k])]
      if bad:
        last = checkpoints.latest_step()
        kept = "no checkpoint was written yet" if last is None else f"the last good checkpoint is {checkpoints.path(last)}"
        raise FloatingPointError(f"non-finite {bad[0]} ({metrics[bad[0]]}) at step {step + 1} of {total}, stage "
                                 f"{stage!r} ({stage_index + 1}/{len(stages)}); this step was not saved and {kept}")
      step += 1
      metrics.update(lr=lr, seconds=time.perf_counter() - start)
      writer.write(step, stage, metrics)
      kill_point("train.step")
      bar.update(1)
      bar.set_postfix(stage=stage, loss=f"{metrics['loss']:.4f}")
      if step % cfg.checkpoint_every == 0 or step in boundaries:
        meta = {"step": step, "stage_index": feeder.stage_index(step), "stage": stage, "iterators": positions,
                "stages": _stage_summary(stages), "metrics": metrics}
        checkpoints.save(step, state, meta, model.cfg)
        kill_point("train.checkpoint")
      if eval_fn is not None and cfg.eval_every and step % cfg.eval_every == 0:
        result = eval_fn(nnx.merge(graphdef, state.params, rest), step)
        if result:
          writer.write(step, stage, dict(result), prefix="eval")
  finally:
    bar.close()
    writer.close()
    checkpoints.close()
  trained = nnx.merge(graphdef, state.params, rest)
  export_dir = None
  if step == total and cfg.export:
    export_dir = export_hf_checkpoint(trained, workdir / "export", tokenizer=tokenizer)
  return TrainResult(step, total, [(s.name, s.steps) for s in stages], metrics, trained, workdir,
                     writer.path, export_dir)
