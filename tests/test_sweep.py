"""Sweeps: a config's hyper-grid expanded into checked points with their own workdirs, printed as
commands that parse back to the point's config, launched one after another, and summarised from
what each workdir holds."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from absl import flags
from ml_collections import config_flags

from sandbox_jax.sweep import expand, load_grid, point_command, point_metrics, run_sweep, summarize

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "configs" / "tiny.py")
sys.path.insert(0, str(ROOT))
from configs.tiny import get_config, sweep  # noqa: E402


def _parse(argv: list[str]):
  """The config that `sandbox-jax` would build from `argv` (absl + config_flags, as main.py does)."""
  values = flags.FlagValues()
  holder = config_flags.DEFINE_config_file("config", None, flag_values=values, sys_argv=argv)
  values(argv)
  return holder.value


def _config_file(tmp_path, grid: str, name: str = "cfg.py") -> str:
  path = tmp_path / name
  path.write_text(textwrap.dedent(f"""
      import sys
      sys.path.insert(0, {str(ROOT)!r})
      from configs.tiny import get_config

      def sweep():
        return {grid}
      """))
  return str(path)


def test_dry_run_prints_one_command_per_point_that_parses_back_to_its_config(tmp_path):
  config = get_config("runlocal")
  config.workdir = str(tmp_path / "runs")
  lines = []
  assert run_sweep(config, f"{TINY}:runlocal", base_overrides={"seed": 7}, out=lines.append) == 0
  commands = [line for line in lines if not line.startswith("#")]
  assert len(commands) == len(sweep()) == 6
  points = expand(config, sweep())
  assert [p.name for p in points][:2] == ["00_margin=0.5_ratio=0.1", "01_margin=0.5_ratio=0.2"]
  assert len({p.workdir for p in points}) == 6 and all(p.workdir.parent == tmp_path / "runs" / "sweep" for p in points)
  assert not (tmp_path / "runs").exists()                        # a dry run writes nothing
  for point, line in zip(points, commands):
    argv = line.split()
    assert argv[:3] == ["sandbox-jax", "pipeline", f"--config={TINY}:runlocal"]
    parsed = _parse(argv[1:])
    assert parsed.train.margin == point.overrides["train.margin"]
    assert parsed.train.ratio == point.overrides["train.ratio"]
    assert parsed.seed == 7 and parsed.workdir == str(point.workdir)
    assert parsed.model.name == "micro-llama"                     # the config argument travels too
    assert parsed.to_dict() == {**point.config.to_dict(), "seed": 7}


def test_nested_values_tuples_bools_and_a_launcher(tmp_path):
  config = get_config()
  grid = [{"train": {"stage_steps": {"imitation": 5}}, "evaluate.adversarial": False, "warmup.lr": 1e-4}]
  (point,) = expand(config, grid, root=tmp_path)
  assert point.overrides == {"train.stage_steps.imitation": 5, "evaluate.adversarial": False, "warmup.lr": 1e-4}
  assert point.name == "00_imitation=5_adversarial=false_lr=0.0001"
  argv = point_command(point, TINY, "simulate", launcher="launch/local.sh --processes 2 --")
  assert argv[:5] == ["launch/local.sh", "--processes", "2", "--", "simulate"]
  parsed = _parse(argv[4:])
  assert parsed.train.stage_steps.imitation == 5 and parsed.evaluate.adversarial is False
  assert parsed.warmup.lr == 1e-4 and parsed.workdir == str(tmp_path / point.name)


def test_ambiguous_short_names_keep_the_whole_key(tmp_path):
  points = expand(get_config(), [{"train.lr": 0.1, "warmup.lr": 0.2}], root=tmp_path)
  assert points[0].name == "00_train.lr=0.1_warmup.lr=0.2"


@pytest.mark.parametrize("grid, match", [
    ("[{'train.margn': 1.0}]", r"sweep point 0 .*config key 'train.margn' is unknown: train has no 'margn'.*'margin'"),
    ("[{'train.margin': 1.0}, {'trian.margin': 1.0}]", r"sweep point 1 .*config key 'trian.margin' is unknown"),
    ("[{'seed.x': 1}]", r"config key 'seed.x' is unknown: seed has no 'x' \(seed is not a section\)"),
    ("[{'train.margin': 'big'}]", r"config key 'train.margin': 'big' does not fit its value 1.0"),
    ("[{'train.stage_steps.imitation': 2.5}]", r"config key 'train.stage_steps.imitation': 2.5 does not fit"),
    ("[{'train': 1}]", r"config key 'train' is a section"),
    ("[{'society.worlds': [['all_good', 0]]}]", r"config key 'society.worlds': a list cannot be set from the command"),
    ("[{'workdir': 'x'}]", r"sets config key 'workdir'"),
    ("['train.margin=1']", r"sweep point 0: expected a dict of config keys"),
    ("{'train.margin': 1.0}", r"sweep\(\) must return a list of dicts"),
    ("[]", r"sweep\(\) returned no points"),
])
def test_bad_points_are_errors_naming_the_key(tmp_path, grid, match):
  spec = _config_file(tmp_path, grid)
  with pytest.raises(ValueError, match=match):
    run_sweep(get_config(), spec, out=lambda line: None)


def test_a_config_without_a_sweep_is_an_error(tmp_path):
  path = tmp_path / "nosweep.py"
  path.write_text("def get_config():\n  return None\n")
  with pytest.raises(ValueError, match="has no sweep"):
    load_grid(str(path))
  with pytest.raises(FileNotFoundError, match="no such config file"):
    load_grid(str(tmp_path / "missing.py"))


def _fake_pipeline_outputs(workdir: Path, loss: float, finished: bool = True):
  """What pipeline/run.py and the trainer leave in a workdir (only the files the summary reads)."""
  def write(rel, obj):
    (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
    (workdir / rel).write_text(obj if isinstance(obj, str) else json.dumps(obj))

  write("warmup/DONE.json", {"stage": "warmup", "final_loss": 3.0})
  write("society/DONE.json", {"stage": "society"})
  write("society/metrics.jsonl", json.dumps({"round": 0, "alignment_after": 3.0, "lift": 0.1}) + "\n"
        + json.dumps({"round": 1, "alignment_after": 4.5, "lift": 0.5}) + "\n")
  write("records/DONE.json", {"stage": "records"})
  write("train/metrics.jsonl", json.dumps({"step": 1, "stage": "imitation", "loss": loss + 1}) + "\n"
        + json.dumps({"step": 2, "stage": "realignment", "loss": loss, "lr": 1e-4, "seconds": 0.2}) + "\n")
  if not finished:
    return
  write("train/DONE.json", {"stage": "train", "steps": 2, "final": {"loss": loss, "grad_norm": 1.5, "lr": 0.0,
                                                                      "seconds": 0.1}})
  for label, alignment in (("start", 3.0), ("trained", 3.0 + loss)):
    write(f"evaluate_{label}/result.json", {"metrics": {"gen/alignment": alignment, "gen/alignment_std": 0.3,
                                                         "adv/mean/alignment_drop": 0.2}})
    write(f"evaluate_{label}/DONE.json", {"stage": f"evaluate_{label}"})
  write("report/comparison.json", {"columns": [], "rows": []})


def test_summary_reads_each_workdir(tmp_path):
  config = get_config("runlocal")
  config.workdir = str(tmp_path)
  points = expand(config, sweep())
  _fake_pipeline_outputs(points[0].workdir, 0.5)
  _fake_pipeline_outputs(points[1].workdir, 0.25, finished=False)   # killed while training
  (points[2].workdir).mkdir(parents=True)                           # started, nothing written yet
  columns, rows = summarize(points, failures={points[3].name: 2})
  assert columns[:4] == ["point", "status", "margin", "ratio"]
  assert [r["status"] for r in rows] == ["done", "records", "started", "failed (exit 2)", "pending", "pending"]
  assert rows[0] == {"point": points[0].name, "status": "done", "margin": 0.5, "ratio": 0.1,
                     "train/loss": 0.5, "train/grad_norm": 1.5, "society/alignment_after": 4.5, "society/lift": 0.5,
                     "start/gen/alignment": 3.0, "start/adv/mean/alignment_drop": 0.2,
                     "trained/gen/alignment": 3.5, "trained/adv/mean/alignment_drop": 0.2}
  assert rows[1]["train/loss"] == 0.25 and "trained/gen/alignment" not in rows[1]   # the last logged step
  assert point_metrics(tmp_path / "nowhere") == {}

  lines = []
  run_sweep(config, f"{TINY}:runlocal", out=lines.append)          # a dry run shows the table too
  table = lines[-1].splitlines()
  assert table[0].startswith("| point | status | margin | ratio | train/loss |")
  assert table[2] == (f"| {points[0].name} | done | 0.5 | 0.1 | 0.5 | 1.5 | 4.5 | 0.5 | 3 | 0.2 | 3.5 | 0.2 |")
  assert not (tmp_path / "sweep" / "summary.md").exists()         # ... but writes nothing


FAKE_RUN = """
import json, sys
from pathlib import Path
args = dict(a.split("=", 1) for a in sys.argv[2:] if "=" in a)
workdir = Path(args["--config.workdir"])
margin = float(args["--config.train.margin"])
if margin == 1.0 and args["--config.train.ratio"] == "0.2":
  sys.exit(3)
(workdir / "train").mkdir(parents=True)
(workdir / "train" / "DONE.json").write_text(json.dumps({"final": {"loss": margin * 10, "command": sys.argv[1]}}))
"""


def test_launch_runs_every_point_then_writes_the_summary(tmp_path):
  script = tmp_path / "fake_run.py"
  script.write_text(FAKE_RUN)
  config = get_config("runlocal")
  config.workdir = str(tmp_path / "runs")
  lines = []
  failed = run_sweep(config, f"{TINY}:runlocal", launch=True, command="train", launcher=f"{sys.executable} {script}",
                     out=lines.append)
  assert failed == 1                                                 # the failure did not stop the others
  summary = json.loads((tmp_path / "runs" / "sweep" / "summary.json").read_text())
  rows = {r["point"]: r for r in summary["rows"]}
  assert len(rows) == 6
  assert rows["03_margin=1.0_ratio=0.2"]["status"] == "failed (exit 3)"
  assert rows["04_margin=2.0_ratio=0.1"]["train/loss"] == 20.0 and rows["04_margin=2.0_ratio=0.1"]["status"] == "train"
  assert (tmp_path / "runs" / "sweep" / "summary.md").read_text() in lines[-1] + "\n"
  assert (tmp_path / "runs" / "sweep" / "summary.csv").read_text().startswith("point,status,margin,ratio,train/loss")


def test_cli_dry_run(tmp_path):
  out = subprocess.run([sys.executable, "-m", "sandbox_jax.main", "sweep", f"--config={TINY}:runlocal", "--dry_run",
                        "--launch", "--config.seed=5"], cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr[-3000:]
  commands = [line for line in out.stdout.splitlines() if line.startswith("sandbox-jax ")]
  assert len(commands) == 6
  assert commands[0] == (f"sandbox-jax pipeline --config={TINY}:runlocal --config.seed=5 --config.train.margin=0.5 "
                         "--config.train.ratio=0.1 --config.workdir=runs/micro/sweep/00_margin=0.5_ratio=0.1")
  spec = _config_file(tmp_path, "[{'train.margin': 1.0, 'train.nope': 1}]")
  bad = subprocess.run([sys.executable, "-m", "sandbox_jax.main", "sweep", f"--config={spec}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert bad.returncode != 0 and "config key 'train.nope' is unknown" in bad.stderr
