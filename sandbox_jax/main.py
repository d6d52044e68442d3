"""The command line: `sandbox-jax <command> --config=configs/<name>.py[:args]`.

Commands:
  pipeline  the main job: every stage below in order, resumable stage by stage.
  simulate  run the society (config.society) with the configured model; writes the transcript.
  records   transcript (--transcript) → training records and rated groups.
  info      the model, its parameter count, the mesh and every parameter's sharding.
  export    write the configured model as a Hugging Face checkpoint directory (--out).
  plan      per-device memory of the train step and the society round, compiled on abstract shapes
            (nothing allocated), and the largest batch that fits --device_memory_gb.
  data      extract BIG-bench's alignment task files from the bigbench==1.0.0 sdist (--sdist=<tar.gz>, or
            --download into --cache_dir) into --out (default data/bigbench); see evaluation/tasks/bigbench_extract.py.
  reproduce the paper's comparison: base, SFT, DPO, RRHF, Stable Alignment staged/mixed (and ablation arms) on
            one society's records, N seeds each, evaluated and tabulated with CIs (pipeline/reproduce.py).
  sweep     the config's hyper-grid (its sweep()): one command per point (dry run), or --launch to run
            them one after another and tabulate their final metrics (sandbox_jax/sweep.py).
"""

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags
from ml_collections.config_flags import config_flags as _config_file_parser



REQUIRED_CONFIG_KEYS = ("seed", "workdir", "tokenizer", "checkpoint", "mesh", "logical_axis_rules")


class CheckedConfigParser(_config_file_parser.ConfigFileFlagParser):
  """ml_collections' config file parser whose every failure is ONE ValueError naming the file (and
  line): absl then prints it as a flags error, without a traceback from inside the loader."""

  def parse(self, path):
    import ml_collections

    file = path.split(":", 1)[0]
    if not os.path.isfile(file):
      raise ValueError(f"{file}: no such config file")
    try:
      code = compile(open(file, "rb").read().decode("utf-8"), file, "exec")
    except UnicodeDecodeError as e:
      raise ValueError(f"{file}: not valid UTF-8 (byte {e.start})") from None
    except SyntaxError as e:
      raise ValueError(f"{file}:{e.lineno}: {e.msg}") from None
    except ValueError as e:  # source code string cannot contain null bytes
      raise ValueError(f"{file}: {e}") from None
    if "get_config" not in code.co_names:
      raise ValueError(f"{file}: no get_config() defined")
    sys.modules.pop(f"{self.name}_config", None)  # else the loader reuses the module loaded before
    try:
      config = super().parse(path)
    except Exception as e:  # noqa: BLE001 -- the config's own code raised: report it against the file
      if isinstance(e, (TypeError, ValueError)) and e.__context__ is not None:
        e = e.__context__  # ml_collections re-raises these with a formatted traceback as the message
      raise ValueError(f"{file}: get_config failed: {type(e).__name__}: {e}") from None
    if type(config).__name__ == "_ErrorConfig":
      raise ValueError(f"{file}: could not be loaded ({object.__getattribute__(config, '_error')})")
    if not isinstance(config, ml_collections.ConfigDict):
      raise ValueError(f"{file}: get_config() returned {type(config).__name__}, expected an ml_collections.ConfigDict")
    missing = [key for key in REQUIRED_CONFIG_KEYS if key not in config]
    if missing:
      raise ValueError(f"{file}: config key {missing[0]!r} is missing (configs start from config_utils.base_config())")
    return config


def load_config(path: str):
  """The ConfigDict of `--config=<file>[:arg]`, or one ValueError naming the file (CheckedConfigParser)."""
  return CheckedConfigParser("config").parse(path)


_CONFIG = config_flags.DEFINE_config_file("config", "configs/tiny.py", "Run config (ml_collections file).")
flags.FLAGS["config"].parser = CheckedConfigParser("config")  # checked from the command line's --config on
_OUT = flags.DEFINE_string("out", None, "Output directory (export, records).")
_TRANSCRIPT = flags.DEFINE_string("transcript", None, "Transcript JSONL (records).")
_LAUNCH = flags.DEFINE_bool("launch", False, "sweep: run the points (default: print their commands).")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "sweep: only print the commands, even with --launch.")
_LAUNCHER = flags.DEFINE_string("launcher", "", "sweep: command prefix that runs a point, e.g. "
                                "'launch/local.sh --processes 2 --' (default: sandbox-jax).")
_SWEEP_COMMAND = flags.DEFINE_string("sweep_command", "pipeline", "sweep: the command every point runs.")
_SDIST = flags.DEFINE_string("sdist", None, "data: the bigbench-1.0.0.tar.gz source distribution.")
_DOWNLOAD = flags.DEFINE_bool("download", False, "data: pip download the sdist into --cache_dir first.")
_CACHE_DIR = flags.DEFINE_string("cache_dir", "data/cache", "data: where --download puts the sdist.")
_DEVICE_MEMORY_GB = flags.DEFINE_float(
    "device_memory_gb", None, "plan: GiB per device to fit (default: config.hardware.device_memory_gb, else "
    "what the device reports, else 16).")


def _setup(config):
  import jax

  from sandbox_jax.parallel import make_mesh, maybe_initialize_distributed

  maybe_initialize_distributed(bool(config.get("distributed", False)) or None)
  mesh = make_mesh(dict(config.mesh))
  if jax.process_index() != 0:
    logging.set_verbosity(logging.ERROR)
  return mesh


def _say(text) -> None:
  """Prints from process 0 only (every process runs the same command in a multi-process launch)."""
  from sandbox_jax.parallel.distributed import is_primary

  if is_primary():
    print(text, flush=True)


def cmd_info(config):
  import jax
  from flax import nnx

  from sandbox_jax.model.loading import load_model_and_tokenizer
  from sandbox_jax.model.tokenizer import adds_bos_of, stop_ids_of

  mesh = _setup(config)
  model, tokenizer = load_model_and_tokenizer(config, mesh)
  params = nnx.state(model, nnx.Param)
  count = sum(x.size for x in jax.tree.leaves(params))
  _say(f"model      {model.cfg.name} ({model.cfg.family}), {count:,} parameters")
  _say(f"tokenizer  {tokenizer.name}, {tokenizer.vocab_size} tokens")
  added = "added" if adds_bos_of(tokenizer) else "not added"
  bos = "none" if tokenizer.bos_id is None else f"{tokenizer.bos_id} ({added})"
  _say(f"special    bos {bos}, eos {tokenizer.eos_id}, pad {tokenizer.pad_id}, stop at {list(stop_ids_of(tokenizer))}")
  _say(f"mesh       {dict(mesh.shape)} on {jax.device_count()} {jax.devices()[0].platform} devices")
  for path, var in nnx.to_flat_state(params):
    value = var.get_value()
    _say(f"  {'.'.join(map(str, path)):24s} {str(value.shape):22s} {value.sharding.spec}")


def cmd_export(config):
  from sandbox_jax.model import export_hf_checkpoint
  from sandbox_jax.model.loading import load_model_and_tokenizer

  if not _OUT.value:
    raise app.UsageError("export needs --out=<directory>")
  model, tokenizer = load_model_and_tokenizer(config, _setup(config))
  _say(export_hf_checkpoint(model, _OUT.value, tokenizer=tokenizer))


def cmd_simulate(config):
  from pathlib import Path

  from sandbox_jax.model.loading import load_model_and_tokenizer
  from sandbox_jax.pipeline.simulate import run_simulation

  model, tokenizer = load_model_and_tokenizer(config, _setup(config))
  name = model.cfg.name
  _say(run_simulation(config.society, model, model, tokenizer, Path(config.workdir) / "society", config.seed,
                      (name, name)))


def cmd_records(config):
  import json
  from pathlib import Path

  from sandbox_jax.pipeline.records import build_records

  transcript = _TRANSCRIPT.value or str(Path(config.workdir) / "society" / "transcript.jsonl")
  out = _OUT.value or str(Path(config.workdir) / "records")
  print(json.dumps(build_records(transcript, out, config.get("records")), indent=2))


def cmd_plan(config):
  from sandbox_jax.pipeline.memory_plan import device_memory_limit, plan_report

  _say(plan_report(config, _setup(config), device_memory_limit(config, _DEVICE_MEMORY_GB.value)))


def cmd_pipeline(config):
  from sandbox_jax.pipeline.run import run_pipeline

  run_pipeline(config, _setup(config))


def cmd_sweep(config):
  from sandbox_jax.sweep import run_sweep

  flag = flags.FLAGS["config"]
  failed = run_sweep(config, config_flags.get_config_filename(flag), launch=_LAUNCH.value and not _DRY_RUN.value,
                     command=_SWEEP_COMMAND.value, base_overrides=config_flags.get_override_values(flag),
                     launcher=_LAUNCHER.value)
  if failed:
    sys.exit(1)


def cmd_data(config):
  import json

  from sandbox_jax.evaluation.tasks.bigbench_extract import download_sdist, extract_bigbench

  del config
  if bool(_SDIST.value) == _DOWNLOAD.value:
    raise app.UsageError("data needs exactly one of --sdist=<bigbench-1.0.0.tar.gz> or --download")
  sdist = download_sdist(_CACHE_DIR.value) if _DOWNLOAD.value else _SDIST.value
  out = _OUT.value or "data/bigbench"
  manifest = extract_bigbench(sdist, out)
  print(json.dumps({"out": out, "files": sorted(manifest["files"])}, indent=2))


def cmd_reproduce(config):
  from sandbox_jax.pipeline.reproduce import run_reproduce

  _say(run_reproduce(config, _setup(config)))


COMMANDS = {"pipeline": cmd_pipeline, "simulate": cmd_simulate, "records": cmd_records, "info": cmd_info,
            "export": cmd_export, "plan": cmd_plan, "sweep": cmd_sweep,
            "data": cmd_data, "reproduce": cmd_reproduce}


def main(argv):
  logging.set_verbosity(logging.WARNING)  # orbax and XLA log every save/compile at INFO
  if len(argv) != 2 or argv[1] not in COMMANDS:
    raise app.UsageError(f"usage: sandbox-jax <{'|'.join(COMMANDS)}> --config=configs/<name>.py[:args]")
  COMMANDS[argv[1]](_CONFIG.value)


def run():
  app.run(main, argv=sys.argv)


if __name__ == "__main__":
  run()
