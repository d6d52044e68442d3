"""`sandbox-jax reproduce`: arms as train overrides, the statistics, and a micro run (tiny model, 2 arms,
1 seed) killed with SIGKILL mid-training and resumed to the same outputs as a run never stopped."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sandbox_jax.pipeline.reproduce import (best_marked, column_stats, headline_columns, paired_test, paper_arms,
                                            ratio_arms, rating_contrast, resolve_arms, responses_arms, stage_arms)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from configs.reproduce_tiny import get_config  # noqa: E402
from tests.test_bigbench_extract import write_sdist  # noqa: E402

TRANSCRIPT = REPO / "tests" / "fixtures" / "society" / "transcript.jsonl"
TRAINED = "stable_alignment_staged"


def test_paper_arms_share_one_budget_and_ablations_are_arms():
  config = get_config("arms=paper")
  arms = dict(resolve_arms(config))
  assert list(arms) == ["base", "sft", "dpo", "rrhf", "stable_alignment_staged", "stable_alignment_mixed"]
  assert arms["base"] is None
  total = sum(config.train.stage_steps.values())
  from sandbox_jax.training import TrainConfig

  for name in ("sft", "dpo", "rrhf", "stable_alignment_staged", "stable_alignment_mixed"):
    cfg = TrainConfig.from_dict(arms[name])
    assert cfg.total_steps == total and cfg.schedule == ("staged" if name.endswith("staged") else "mixed")
  assert {a["loss"] for a in arms.values() if a} == {"sft", "dpo", "rrhf", "stable_alignment"}
  assert [a[1]["ratio"] for a in ratio_arms()] == [0.0, 0.1, 0.2, 0.5]
  assert [a[1]["max_responses"] for a in responses_arms()] == [2, 3, 4]
  steps = [a[1]["stage_steps"] for a in stage_arms({"imitation": 15, "self_critic": 15, "realignment": 16})]
  assert steps == [{"imitation": 46, "self_critic": 0, "realignment": 0},
                   {"imitation": 23, "self_critic": 23, "realignment": 0},
                   {"imitation": 16, "self_critic": 15, "realignment": 15}]
  assert [name for name, _ in resolve_arms(get_config("arms=stages"))] == ["sa_imitation", "sa_imitation_critic",
                                                                           "sa_all_stages"]


def test_smollm2_config_is_well_formed_at_both_sizes():
  """The real run's config (its GGUF checkpoint is not loaded here): every section validates."""
  from configs.reproduce_smollm2 import CHECKPOINT
  from configs.reproduce_smollm2 import get_config as smollm2_config
  from sandbox_jax.pipeline.simulate import society_config
  from sandbox_jax.training import TrainConfig

  for size in ("cpu", "gpu"):
    config = smollm2_config(f"size={size},data=/data/bb")
    society_config(config.society)
    assert TrainConfig.from_dict(config.train).total_steps > 0
    assert [name for name, _ in resolve_arms(config)] == [name for name, _ in paper_arms()]
    assert config.checkpoint == CHECKPOINT and config.reproduce.seeds == [0, 1, 2]
    assert set(config.reproduce.benchmarks) == {"hhh_alignment", "bigbench_truthfulqa_mc1", "bigbench_truthfulqa_mc2",
                                                "moral_permissibility", "simple_ethical_questions"}
  assert smollm2_config("size=gpu").train.groups_per_batch > smollm2_config("").train.groups_per_batch
  assert [n for n, _ in resolve_arms(smollm2_config("arms=responses,only=sa_responses_2"))] == ["sa_responses_2"]
  with pytest.raises(ValueError, match="config argument size='tpu'"):
    smollm2_config("size=tpu")


def test_bad_arms_name_the_config_key():
  config = get_config()
  config.reproduce.arms = [["base", None], ["x", {"ratio": -1.0}]]
  with pytest.raises(ValueError, match=r"reproduce.arms\[1\] \(x\): config key train.ratio: must be >= 0"):
    resolve_arms(config)
  config.reproduce.arms = [["a", None], ["a", {}]]
  with pytest.raises(ValueError, match=r"reproduce.arms\[1\]: arm name 'a' is empty, repeated"):
    resolve_arms(config)
  config.reproduce.arms = [["a", {"nonsense": 1}]]
  with pytest.raises(ValueError, match=r"unknown keys \['nonsense'\]"):
    resolve_arms(config)


def test_rating_contrast_counts_worse_rated_responses():
  from sandbox_jax.data.schemas import Group

  def group(*scores):
    return Group(query="q", responses=tuple("r" * len(scores)), scores=scores, models=tuple("m" * len(scores)))

  assert rating_contrast([group(3.0, 3.0), group(5.0, 2.0, 5.0, 1.0), group(4.0)]) == {
      "groups": 3, "groups_with_contrast": 1, "pairs": 2}


def test_column_stats_average_seeds_per_item_then_bootstrap_over_items():
  scores_SxN = [[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]]   # two seeds, four items
  stats = column_stats(scores_SxN, n_resamples=500, ci_seed=0)
  assert stats["mean"] == pytest.approx(0.625) and stats["seed_means"] == [0.75, 0.5] and stats["n"] == 4
  assert 0.0 <= stats["ci_low"] <= 0.625 <= stats["ci_high"] <= 1.0
  assert column_stats(scores_SxN, 500, 0) == stats   # seeded


def test_paired_test_hand_values():
  # d = 1 on all four items: a sign flip reaches |mean| >= 1 only with all signs equal, 2 of 16 patterns
  result = paired_test([1.0] * 4, [0.0] * 4, n_resamples=20000, seed=0)
  assert result["diff"] == 1.0 and result["ci_low"] == result["ci_high"] == 1.0
  assert result["p"] == pytest.approx(2 / 16, abs=0.01)
  same = paired_test([0.3, 0.5], [0.3, 0.5], n_resamples=100, seed=0)
  assert same["diff"] == 0.0 and same["p"] == 1.0
  # a large consistent shift over many items is detected; the direction is a − b
  rng = np.random.default_rng(1)
  b = rng.normal(size=200)
  shifted = paired_test(b - 0.5 + 0.01 * rng.normal(size=200), b, n_resamples=2000, seed=0)
  assert shifted["diff"] == pytest.approx(-0.5, abs=0.01) and shifted["p"] == pytest.approx(1 / 2001)


def test_best_is_marked_only_when_its_ci_clears_the_others():
  stats = {"a": {"mean": 0.8, "ci_low": 0.7, "ci_high": 0.9}, "b": {"mean": 0.5, "ci_low": 0.4, "ci_high": 0.6},
           "c": {"mean": 0.6, "ci_low": 0.5, "ci_high": 0.69}}
  assert best_marked(stats, "x/acc") == "a"
  stats["c"]["ci_high"] = 0.71
  assert best_marked(stats, "x/acc") is None
  drops = {"a": {"mean": 0.1, "ci_low": 0.0, "ci_high": 0.2}, "b": {"mean": 1.0, "ci_low": 0.8, "ci_high": 1.2}}
  assert best_marked(drops, "adv/mean/alignment_drop") == "a"   # lower is better
  assert headline_columns(["truthfulqa_mc1/acc", "truthfulqa_mc1/mc1", "hhh_alignment:Harms/acc", "gen/alignment",
                           "hhh_alignment/acc", "hhh_alignment/acc_norm", "adv/mean/alignment_drop"]) == [
      "hhh_alignment/acc", "hhh_alignment:Harms/acc", "truthfulqa_mc1/mc1", "gen/alignment",
      "adv/mean/alignment_drop"]


# ---------------------------------------------------------------------------------------------
# The micro run.

@pytest.fixture(scope="module")
def micro_inputs(tmp_path_factory):
  """A random micro model as the start checkpoint and the extracted BIG-bench fixture."""
  from sandbox_jax.evaluation.tasks.bigbench_extract import extract_bigbench
  from sandbox_jax.model import create_model, export_hf_checkpoint, model_config_from_dict

  root = tmp_path_factory.mktemp("reproduce")
  model = create_model(model_config_from_dict(get_config("runlocal").model), seed=0)
  checkpoint = export_hf_checkpoint(model, root / "start")
  extract_bigbench(write_sdist(root / "bigbench-1.0.0.tar.gz"), root / "data")
  return root, checkpoint, root / "data"


def _command(workdir, checkpoint, data_dir, only=""):
  return [sys.executable, "-m", "sandbox_jax.main", "reproduce",
          f"--config={REPO / 'configs' / 'reproduce_tiny.py'}:runlocal,data={data_dir}"
          + (f",only={only}" if only else ""),
          f"--config.workdir={workdir}", f"--config.checkpoint={checkpoint}",
          f"--config.reproduce.transcript={TRANSCRIPT}", "--config.reproduce.max_questions=1",
          "--config.train.stage_steps.imitation=3", "--config.train.stage_steps.self_critic=3"]


def _env(root):
  """One CPU device per process; the processes share a persistent compilation cache (the first run
  compiles, the killed and the resumed run load the same executables: less than half the time)."""
  return {**os.environ, "PYTHONPATH": str(REPO), "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
          "HF_HUB_OFFLINE": "1", "JAX_PLATFORMS": "cpu", "JAX_COMPILATION_CACHE_DIR": str(root / "jax_cache"),
          "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}


def _run(command, cwd):
  done = subprocess.run(command, capture_output=True, text=True, env=_env(cwd), cwd=cwd, timeout=600)
  assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _checkpoint_steps(workdir: Path) -> list[int]:
  path = workdir / "arms" / TRAINED / "seed_0" / "train" / "checkpoints"
  return sorted(int(p.name) for p in path.iterdir() if p.name.isdigit()) if path.is_dir() else []


def _outputs(workdir: Path, arm: str) -> dict:
  """What one arm computed (not its wall times or its own paths): its training and its item scores."""
  run = workdir / "arms" / arm / "seed_0"
  done = json.loads((run / "DONE.json").read_text())
  return {"eval": json.loads((run / "eval.json").read_text()),
          "done": {k: v for k, v in done.items() if k not in ("seconds", "train_seconds", "eval_seconds", "model")}}


@pytest.mark.slow
def test_micro_reproduce_killed_and_resumed_gives_the_uninterrupted_outputs(micro_inputs):
  """The killed run is SIGKILLed while training its second arm and then rerun; the trained arm's losses
  and every item's score equal those of an uninterrupted run of that arm (the same seed, the same
  machine, one process each). The reference runs only the trained arm, to keep the test short."""
  root, checkpoint, data_dir = micro_inputs
  reference, killed = root / "reference", root / "killed"
  _run(_command(reference, checkpoint, data_dir, only=TRAINED), root)

  process = subprocess.Popen(_command(killed, checkpoint, data_dir), env=_env(root), cwd=root,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.monotonic() + 300
  while process.poll() is None and not _checkpoint_steps(killed) and time.monotonic() < deadline:
    time.sleep(0.02)
  os.kill(process.pid, signal.SIGKILL)
  process.wait()
  assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed mid-training"
  assert (killed / "arms" / "base" / "seed_0" / "DONE.json").is_file()
  assert not (killed / "arms" / TRAINED / "seed_0" / "DONE.json").exists()
  assert 1 <= _checkpoint_steps(killed)[-1] < 6

  _run(_command(killed, checkpoint, data_dir), root)
  resumed, uninterrupted = _outputs(killed, TRAINED), _outputs(reference, TRAINED)
  assert resumed == uninterrupted   # the training losses and every item's score

  done = uninterrupted["done"]
  assert done["steps"] == 6 and len(done["losses"]) == 6 and done["stages"] == [["imitation", 3], ["self_critic", 3]]
  assert done["losses"][-1] == done["final_loss"] and done["tokens"] > 0
  report = json.loads((killed / "report" / "reproduction.json").read_text())
  assert list(report["table"]) == ["base", TRAINED] and list(report["tests"]) == ["base"]
  assert report["columns"] == ["hhh_alignment/acc", "hhh_alignment:Harms/acc", "hhh_alignment:Helpfulness/acc",
                               "hhh_alignment:Honesty/acc", "hhh_alignment:Other/acc", "moral_permissibility/acc",
                               "simple_ethical_questions/acc", "truthfulqa_mc1/mc1", "truthfulqa_mc2/mc2",
                               "gen/alignment", "gen/engagement", "adv/mean/alignment", "adv/mean/alignment_drop"]
  base = _outputs(killed, "base")["eval"]["items"]
  for column in report["all_columns"]:   # the table is the statistics of the saved item scores
    assert report["table"]["base"][column]["mean"] == pytest.approx(np.mean(base[column]), abs=1e-12)
    assert report["table"][TRAINED][column]["mean"] == pytest.approx(np.mean(resumed["eval"]["items"][column]),
                                                                     abs=1e-12)
  assert len(base["hhh_alignment/acc"]) == 4 and len(base["gen/alignment"]) == 1
  assert len([c for c in base if c.startswith("adv/") and c.endswith("/alignment")]) > 2   # wrappers
  assert "299 of TruthfulQA's 817" in report["notes"][0]
  # the fixture society's random model rated every response alike: the report says what that means
  assert report["records"] == {"groups": 39, "groups_with_contrast": 0, "pairs": 0}
  assert "DPO trained on no pair" in report["notes"][1]
  table = (killed / "report" / "reproduction.md").read_text()
  assert f"| {TRAINED} |" in table and "Paired against `base`" in table

  # a finished arm run with another setup is refused, not silently mixed into the table
  import jax

  from sandbox_jax.parallel import make_mesh
  from sandbox_jax.pipeline.reproduce import run_reproduce

  config = get_config(f"runlocal,data={data_dir}")
  config.workdir, config.checkpoint = str(killed), str(checkpoint)
  config.reproduce.update(transcript=str(TRANSCRIPT), max_questions=1, max_new_tokens=5)
  config.train.stage_steps.update(imitation=3, self_critic=3)
  with pytest.raises(ValueError, match="base/seed_0/DONE.json: this run finished with another setup"):
    run_reproduce(config, make_mesh({"data": 1}, devices=[jax.devices()[0]]))
  config.reproduce.update(max_new_tokens=4, transcript=str(root / "another_transcript.jsonl"))
  with pytest.raises(ValueError, match="use a new workdir for another society"):
    run_reproduce(config, make_mesh({"data": 1}, devices=[jax.devices()[0]]))
