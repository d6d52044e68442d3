"""Sweeps: a config's hyper-grid, one run per point, and one table of every point's final metrics.

A config file declares its grid beside `get_config` (big_vision style): `sweep()` (or `sweep(arg)`,
given the config string's `:arg`) returns a list of points, each a dict of dotted config keys →
values, e.g. `[{"train.margin": 0.5, "train.ratio": 0.1}, ...]`. A dict value sets the keys under
it (`{"train.stage_steps": {"imitation": 5}}` is `train.stage_steps.imitation=5`).

  sandbox-jax sweep --config=configs/tiny.py                 # dry run: one command per point
  sandbox-jax sweep --config=configs/tiny.py --launch        # run them one after another, then the table
  sandbox-jax sweep --config=configs/tiny.py --launch --launcher='launch/local.sh --processes 2 --'

Every point runs `sandbox-jax <--sweep_command> --config=<the same config> --config.<key>=<value> ...`
in its own workdir, `<config.workdir>/sweep/<NN>_<key>=<value>_...` (keys shortened to their last
part where that is unambiguous); other `--config.*` overrides of the sweep command apply to every
point. Every key is checked against the config before anything runs: an unknown key, a value of
the wrong type or one the command line cannot carry is an error naming the point and the key.

The summary (`<config.workdir>/sweep/summary.{md,csv,json}`, also printed) has one row per point:
its status (`pending`, the last finished pipeline stage, `done`, or `failed (exit N)`), its values,
and the final metrics its workdir holds: `train/*` (the last train step), `society/*` (the last
society round), and `<start|trained>/*` (the evaluations' headline metrics).
"""

import dataclasses
import importlib.util
import inspect
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections

SWEEP_DIR = "sweep"
SUMMARY_NAME = "summary"
# pipeline stages in order (pipeline/run.py); the last one with a DONE.json is a point's status
PIPELINE_STAGES = ("warmup", "society", "records", "train", "evaluate_start", "evaluate_trained")
_CLI_TYPES = (bool, int, float, str, tuple, type(None))
_DETAIL_SUFFIXES = ("_stderr", "_std", "_ci_low", "_ci_high", "/n")   # evaluation.plots.DETAIL_SUFFIXES
_NOT_FINAL = ("lr", "seconds")   # per-step bookkeeping, not results


@dataclasses.dataclass(frozen=True)
class SweepPoint:
  index: int
  name: str                        # readable and unique: '00_margin=0.5_ratio=0.1'
  overrides: dict[str, Any]        # dotted config key -> value
  workdir: Path
  config: ml_collections.ConfigDict  # the run config with the overrides applied


# -- the grid ---------------------------------------------------------------------------------------
def load_grid(config_spec: str) -> list[dict]:
  """The points `sweep()` of the config file `config_spec` ('path.py' or 'path.py:arg') returns."""
  path, _, arg = config_spec.partition(":")
  if not Path(path).is_file():
    raise FileNotFoundError(f"{path}: no such config file")
  spec = importlib.util.spec_from_file_location(f"_sweep_config_{Path(path).stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  fn = getattr(module, "sweep", None)
  if not callable(fn):
    raise ValueError(f"{path}: has no sweep(); declare the hyper-grid beside get_config as "
                     "def sweep(): return [{'train.margin': 0.5}, ...]")
  grid = fn(arg or None) if inspect.signature(fn).parameters else fn()
  if isinstance(grid, Mapping) or not isinstance(grid, Sequence) or isinstance(grid, str):
    raise ValueError(f"{path}: sweep() must return a list of dicts (one per point), got {type(grid).__name__}")
  if not grid:
    raise ValueError(f"{path}: sweep() returned no points")
  return list(grid)


def _flatten(point: Mapping, prefix: str = "") -> dict[str, Any]:
  out = {}
  for key, value in point.items():
    key = f"{prefix}{key}"
    if isinstance(value, (Mapping, ml_collections.ConfigDict)):
      out.update(_flatten(dict(value), key + "."))
    else:
      out[key] = value
  return out


def _check_and_set(config: ml_collections.ConfigDict, key: str, value, where: str) -> None:
  """Sets dotted `key` of `config` to `value`; a key the config lacks, or a value of another type, is an
  error naming `where` and the key."""
  node, parts = config, key.split(".")
  for depth, part in enumerate(parts):
    if not isinstance(node, ml_collections.ConfigDict) or part not in node:
      parent = ".".join(parts[:depth]) or "the config"
      known = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
      hint = f"; keys of {parent}: {known}" if known else f" ({parent} is not a section)"
      raise ValueError(f"{where}: config key {key!r} is unknown: {parent} has no {part!r}{hint}")
    if depth < len(parts) - 1:
      node = node[part]
  current = node[parts[-1]]
  if isinstance(current, ml_collections.ConfigDict):
    raise ValueError(f"{where}: config key {key!r} is a section; sweep its keys ({key}.<name>) instead")
  if not isinstance(current, _CLI_TYPES) or not isinstance(value, _CLI_TYPES):
    bad = current if not isinstance(current, _CLI_TYPES) else value
    raise ValueError(f"{where}: config key {key!r}: a {type(bad).__name__} cannot be set from the command line; "
                     f"sweep keys of type {[t.__name__ for t in _CLI_TYPES]} (or add a config argument)")
  if isinstance(value, bool) and isinstance(current, (int, float)) and not isinstance(current, bool):
    raise ValueError(f"{where}: config key {key!r} is a {type(current).__name__}, got the bool {value!r}")
  try:
    node[parts[-1]] = value
  except (TypeError, ValueError) as e:
    raise ValueError(f"{where}: config key {key!r}: {value!r} does not fit its value {current!r}: {e}") from None


def _format(value) -> str:
  if isinstance(value, bool):
    return "true" if value else "false"
  if isinstance(value, float):
    return repr(value)
  return str(value)


def _short_names(keys: Sequence[str]) -> dict[str, str]:
  """Each key's last part, unless two keys share it (then the whole key)."""
  last = [k.rsplit(".", 1)[-1] for k in keys]
  return {k: (short if last.count(short) == 1 else k) for k, short in zip(keys, last)}


def _slug(text: str) -> str:
  return re.sub(r"[^A-Za-z0-9._=+-]+", "-", text).strip("-")


def expand(config: ml_collections.ConfigDict, grid: Sequence[Mapping],
           root: str | Path | None = None) -> list[SweepPoint]:
  """The points of `grid`, each checked against `config`, with its own workdir under `root`
  (default `<config.workdir>/sweep`)."""
  root = Path(config.workdir) / SWEEP_DIR if root is None else Path(root)
  flat = []
  for i, point in enumerate(grid):
    if not isinstance(point, (Mapping, ml_collections.ConfigDict)):
      raise ValueError(f"sweep point {i}: expected a dict of config keys, got {type(point).__name__} {point!r}")
    overrides = _flatten(dict(point))
    if "workdir" in overrides:
      raise ValueError(f"sweep point {i} ({overrides}): sets config key 'workdir'; the sweep gives every point "
                       "its own (under the config's workdir)")
    flat.append(overrides)
  keys = list(dict.fromkeys(k for overrides in flat for k in overrides))
  short = _short_names(keys)
  points, names = [], set()
  for i, overrides in enumerate(flat):
    point_config = config.copy_and_resolve_references()
    for key, value in overrides.items():
      _check_and_set(point_config, key, value, f"sweep point {i} ({overrides})")
    name = f"{i:02d}" + "".join(f"_{_slug(short[k])}={_slug(_format(v))}" for k, v in overrides.items())
    name = name[:120]
    if name in names:  # only a truncation can collide (the index is unique): never share a workdir
      name = f"{name}_{i}"
    names.add(name)
    point_config.workdir = str(root / name)
    points.append(SweepPoint(i, name, overrides, root / name, point_config))
  return points


# -- commands ---------------------------------------------------------------------------------------
def point_command(point: SweepPoint, config_spec: str, command: str = "pipeline",
                  base_overrides: Mapping[str, Any] | None = None, launcher: str = "") -> list[str]:
  """argv that runs `point`: `<launcher or sandbox-jax> <command> --config=<spec> --config.<k>=<v> ...`;
  `base_overrides` (the sweep command's own --config.* flags) come first, the point's after them."""
  merged = {k: v for k, v in (base_overrides or {}).items() if k != "workdir"}
  merged.update(point.overrides)
  args = [command, f"--config={config_spec}"]
  args += [f"--config.{k}={_format(v)}" for k, v in merged.items()]
  args.append(f"--config.workdir={point.workdir}")
  return (shlex.split(launcher) if launcher else ["sandbox-jax"]) + args


def _executable(argv: list[str]) -> list[str]:
  """`sandbox-jax` from this Python when the entry point is not on PATH (an uninstalled checkout)."""
  if argv and argv[0] == "sandbox-jax" and shutil.which("sandbox-jax") is None:
    return [sys.executable, "-m", "sandbox_jax.main"] + argv[1:]
  return argv


# -- the summary --------------------------------------------------------------------------------------
def _read_json(path: Path):
  try:
    return json.loads(path.read_text())
  except (OSError, ValueError):
    return None


def _last_jsonl(path: Path) -> dict | None:
  try:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return json.loads(lines[-1]) if lines else None
  except (OSError, ValueError):
    return None


def _numbers(prefix: str, values: Mapping | None, skip=()) -> dict[str, float]:
  out = {}
  for key, value in (values or {}).items():
    if key in skip or str(key).endswith(_DETAIL_SUFFIXES):
      continue
    if isinstance(value, (int, float)) and not isinstance(value, bool):
      out[f"{prefix}/{key}"] = float(value)
  return out


def point_status(workdir: str | Path) -> str:
  workdir = Path(workdir)
  if not workdir.is_dir():
    return "pending"
  if (workdir / "report" / "comparison.json").is_file():
    return "done"
  finished = [stage for stage in PIPELINE_STAGES if (workdir / stage / "DONE.json").is_file()]
  return finished[-1] if finished else "started"


def point_metrics(workdir: str | Path) -> dict[str, float]:
  """The final metrics a run left in `workdir` (see the module doc); {} for a run that wrote none."""
  workdir = Path(workdir)
  metrics = {}
  done = _read_json(workdir / "train" / "DONE.json")
  final = done.get("final") if isinstance(done, dict) else None
  if final is None:   # a running or killed training run, or a workdir of `train` alone
    last = _last_jsonl(workdir / "train" / "metrics.jsonl") or _last_jsonl(workdir / "metrics.jsonl")
    final = {k: v for k, v in (last or {}).items() if k not in ("step", "stage", "time")}
  metrics.update(_numbers("train", final, skip=_NOT_FINAL))
  society = _last_jsonl(workdir / "society" / "metrics.jsonl")
  metrics.update(_numbers("society", society, skip=("round",)))
  for label in ("start", "trained"):
    result = _read_json(workdir / f"evaluate_{label}" / "result.json")
    if isinstance(result, dict):
      metrics.update(_numbers(label, result.get("metrics")))
  return {k: v for k, v in metrics.items() if not math.isnan(v)}


def summarize(points: Sequence[SweepPoint], failures: Mapping[str, int] | None = None) -> tuple[list[str], list[dict]]:
  """(columns, rows): point, status, the swept keys, then every metric any point has."""
  failures = failures or {}
  keys = list(dict.fromkeys(k for p in points for k in p.overrides))
  short = _short_names(keys)
  rows, metric_columns = [], []
  for p in points:
    row = {"point": p.name, "status": (f"failed (exit {failures[p.name]})" if p.name in failures
                                       else point_status(p.workdir))}
    row.update({short[k]: v for k, v in p.overrides.items()})
    metrics = point_metrics(p.workdir)
    metric_columns += [k for k in metrics if k not in metric_columns]
    row.update(metrics)
    rows.append(row)
  return ["point", "status"] + [short[k] for k in keys] + metric_columns, rows


def _cell(value) -> str:
  if value is None:
    return ""
  if isinstance(value, float):
    return f"{value:.6g}"   # swept values as given (0.0001, 2.0 → 2), metrics to 6 significant digits
  return str(value)


def table_markdown(columns: Sequence[str], rows: Sequence[Mapping]) -> str:
  from sandbox_jax.evaluation.compare import table_markdown as markdown

  return markdown(columns, rows, format_cell=_cell, right_align=False)


def write_summary(root: str | Path, columns: Sequence[str], rows: Sequence[Mapping]) -> dict[str, Path]:
  """summary.md / .csv / .json under `root` (atomically); returns their paths."""
  from sandbox_jax.data.jsonl import atomic_write_text
  from sandbox_jax.evaluation.compare import table_csv

  root = Path(root)
  paths = {ext: root / f"{SUMMARY_NAME}.{ext}" for ext in ("md", "csv", "json")}
  atomic_write_text(paths["md"], table_markdown(columns, rows))
  atomic_write_text(paths["csv"], table_csv(columns, rows))
  atomic_write_text(paths["json"], json.dumps({"columns": list(columns), "rows": list(rows)}, indent=1) + "\n")
  return paths


# -- the command --------------------------------------------------------------------------------------
def run_sweep(config: ml_collections.ConfigDict, config_spec: str, *, launch: bool = False, command: str = "pipeline",
              base_overrides: Mapping[str, Any] | None = None, launcher: str = "", out=print) -> int:
  """Dry run (default): prints one command per point, then the summary of points that have results.
  `launch`: runs the points one after another (a failed point does not stop the others), then
  writes and prints the summary. Returns the number of failed points."""
  points = expand(config, load_grid(config_spec))
  root = points[0].workdir.parent
  commands = [point_command(p, config_spec, command, base_overrides, launcher) for p in points]
  failures = {}
  if not launch:
    out(f"# sweep: {len(points)} points of {config_spec.partition(':')[0]} (dry run; --launch runs them)")
    for argv in commands:
      out(shlex.join(argv))
    if not any(p.workdir.exists() for p in points):
      return 0
  else:
    for p, argv in zip(points, commands):
      out(f"# sweep point {p.index + 1}/{len(points)}: {p.name}\n{shlex.join(argv)}")
      code = subprocess.run(_executable(argv), env=dict(os.environ)).returncode
      if code:
        failures[p.name] = code
        out(f"# sweep point {p.name} failed with exit code {code}; going on with the next")
  columns, rows = summarize(points, failures)
  if launch:
    paths = write_summary(root, columns, rows)
    out(f"# sweep summary: {paths['md']}")
  out(table_markdown(columns, rows))
  return len(failures)
