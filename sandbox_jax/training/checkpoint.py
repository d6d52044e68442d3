"""Orbax checkpoints of the train state, checked against the model before anything is restored.

One checkpoint (`<dir>/<step>/`) holds two items:
  state  the TrainState (parameters, optimizer moments, step, RNG) as a flat {name: array} dict,
         names from the pytree paths (`params.layers.q.value`, `opt_state.1.0.mu.embed.value`);
  meta   JSON: step, stage index and name, the data iterators' positions, the model config and
         every state array's shape and dtype.

Restoring first compares `meta` with the current model: a different architecture (model config
key) or a different array (name, shape, dtype) is an error naming the checkpoint directory and the
key, raised before any array is read; a damaged checkpoint (files truncated, altered, missing) is
one error naming the checkpoint directory and the item it could not read. Arrays are then restored straight into the current state's
shardings. Orbax writes each checkpoint to a temporary directory and renames it when complete, so
a killed run never leaves a half-written checkpoint behind; saving waits until the checkpoint is
on disk (the next step donates the state's buffers).
"""

import dataclasses
import json
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

# Model config fields that change how the model runs, not its parameters: resuming across them is fine.
RUNTIME_FIELDS = ("dtype", "remat_policy", "scan_unroll", "name")


def _name(path) -> str:
  parts = []
  for key in path:
    for attr in ("key", "name", "idx"):
      if hasattr(key, attr):
        parts.append(str(getattr(key, attr)))
        break
  return ".".join(parts)


def flatten_state(tree) -> tuple[dict[str, Any], Any]:
  leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
  return {_name(path): leaf for path, leaf in leaves}, treedef


def _jsonable(value):
  return json.loads(json.dumps(value, default=str))


def model_config_dict(model_cfg) -> dict[str, Any]:
  return _jsonable(dataclasses.asdict(model_cfg))


class CheckpointMismatchError(ValueError):
  """The checkpoint was written for a different model or train state."""


class CheckpointDamagedError(ValueError):
  """A checkpoint's files are damaged (truncated, altered, missing)."""


class TrainCheckpoints:
  def __init__(self, directory: str | Path, *, max_to_keep: int = 2):
    self.directory = Path(directory).absolute()
    self.manager = ocp.CheckpointManager(
        self.directory, item_names=("state", "meta"),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def path(self, step: int | None) -> Path:
    return self.directory / str(step)

  def save(self, step: int, state, meta: dict[str, Any], model_cfg) -> None:
    flat, _ = flatten_state(state)
    shapes = {k: [list(v.shape), str(v.dtype)] for k, v in flat.items()}
    meta = _jsonable({**meta, "model_config": model_config_dict(model_cfg), "arrays": shapes})
    self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(flat),
                                                    meta=ocp.args.JsonSave(meta)))
    self.manager.wait_until_finished()

  def read_meta(self, step: int) -> dict[str, Any]:
    meta = self._read(step, "meta", ocp.args.JsonRestore())
    bad = [k for k in ("model_config", "arrays") if not isinstance(meta, dict) or not isinstance(meta.get(k), dict)]
    if bad:
      raise CheckpointDamagedError(f"{self.path(step)}: damaged checkpoint: its meta item has no mapping {bad[0]!r}")
    return meta

  def _read(self, step: int, item: str, args):
    """One item of a checkpoint; a damaged or unreadable one is one error naming the checkpoint."""
    try:
      return self.manager.restore(step, args=ocp.args.Composite(**{item: args}))[item]
    except Exception as e:
      detail = " ".join(str(e).split())
      detail = detail if len(detail) <= 300 else detail[:300] + "..."
      raise CheckpointDamagedError(f"{self.path(step)}: damaged checkpoint: cannot read its {item} item "
                                   f"({type(e).__name__}: {detail})") from None

  def check(self, step: int, meta: dict[str, Any], abstract_state, model_cfg) -> None:
    """Raises CheckpointMismatchError naming the first differing model config key or array."""
    where = self.path(step)
    saved_cfg, ours = meta.get("model_config", {}), model_config_dict(model_cfg)
    for key in sorted(set(saved_cfg) | set(ours)):
      if key not in RUNTIME_FIELDS and saved_cfg.get(key) != ours.get(key):
        raise CheckpointMismatchError(
            f"{where}: checkpoint of a different model: model config key {key!r} is "
            f"{saved_cfg.get(key)!r} there but {ours.get(key)!r} here; use a new workdir or the "
            "checkpoint's model config")
    saved = meta.get("arrays", {})
    flat, _ = flatten_state(abstract_state)
    for key in sorted(set(saved) | set(flat)):
      if key not in saved or key not in flat:
        side = "only in the checkpoint" if key in saved else "missing from the checkpoint"
        raise CheckpointMismatchError(f"{where}: train state key {key!r} is {side} (a different model or "
                                      "optimizer config, e.g. train.grad_clip); use a new workdir")
      ours_shape = [list(flat[key].shape), str(np.dtype(flat[key].dtype))]
      if saved[key] != ours_shape:
        raise CheckpointMismatchError(f"{where}: train state key {key!r} has shape/dtype {saved[key]} there "
                                      f"but {ours_shape} here; use a new workdir or the matching config")

  def restore(self, step: int, abstract_state, model_cfg):
    """(state, meta): checks first (see `check`), then restores into `abstract_state`'s shardings.

    `abstract_state` is a TrainState of jax.ShapeDtypeStruct (with shardings, or None for the
    default device).
    """
    meta = self.read_meta(step)
    self.check(step, meta, abstract_state, model_cfg)
    flat, treedef = flatten_state(abstract_state)
    restored = self._read(step, "state", ocp.args.StandardRestore(flat))
    leaves = [restored[k] for k in flat]
    return jax.tree_util.tree_unflatten(treedef, leaves), meta

  def close(self) -> None:
    self.manager.close()
