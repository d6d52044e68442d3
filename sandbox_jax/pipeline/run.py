"""The main job: warm-up → observer calibration → simulate → records → train → evaluate → compare.

Each stage writes under `<workdir>/<stage>/` and a DONE.json last; rerunning the command skips
finished stages and resumes an interrupted one from its own checkpoints (the society runner and
the trainer both resume). Models move between stages as Hugging Face directories.

Multi-process, every process runs every stage (the models span all of them); process 0 alone
prints and writes the files, and the others wait for what they read next (`stages`).
"""

import json
from pathlib import Path

from sandbox_jax.data.jsonl import atomic_write_text
from sandbox_jax.data.seed_corpus import load_seed_corpus
from sandbox_jax.inference import InferenceEngine
from sandbox_jax.kill_points import kill_point
from sandbox_jax.model import load_tokenizer
from sandbox_jax.model.loading import load_checkpoint, load_model
from sandbox_jax.parallel.distributed import is_primary, sync
from sandbox_jax.parallel.rules import rules_from_config
from sandbox_jax.pipeline import stages
from sandbox_jax.pipeline.calibrate import observer_stage
from sandbox_jax.pipeline.records import build_records, training_groups
from sandbox_jax.pipeline.simulate import question_source, run_simulation
from sandbox_jax.pipeline.warmup import rating_separation, warmup_groups
from sandbox_jax.protocol.templates import templates_from_config
from sandbox_jax.training import TrainConfig, train


def _log(message: str):
  if is_primary():
    print(f"[pipeline] {message}", flush=True)


# ModelConfig fields that say how a model runs, not what it is: the config's values apply to every
# stage's model (an exported HF directory carries only the architecture).
_RUNTIME_MODEL_FIELDS = ("dtype", "param_dtype", "remat_policy", "scan_unroll")


def _load_stage_model(config, directory: Path, mesh):
  """A stage's HF directory (or the configured GGUF file) with the config's runtime model settings and
  logical axis rules."""
  runtime = {k: v for k, v in dict(config.get("model") or {}).items() if k in _RUNTIME_MODEL_FIELDS}
  return load_checkpoint(str(directory), mesh=mesh, rules=rules_from_config(config.logical_axis_rules), **runtime)


def _warmup(config, workdir, mesh, tokenizer) -> Path:
  section = config.warmup
  templates = templates_from_config(config.society.get("templates"))
  heldout = load_seed_corpus("heldout")
  model = load_model(config.model, config.checkpoint, mesh, config.logical_axis_rules, config.seed)
  before = rating_separation(InferenceEngine(model, tokenizer, mesh), heldout, templates, section.answer_chars)
  groups = warmup_groups(load_seed_corpus("train"), templates, answer_chars=section.answer_chars, seed=config.seed)
  cfg = TrainConfig(loss="sft", lr=section.lr, groups_per_batch=section.groups_per_batch, max_len=section.max_len,
                    max_responses=1, schedule="mixed", stage_steps=(("mixed", section.steps),),
                    checkpoint_every=max(section.steps // 4, 1), seed=config.seed)
  result = train(cfg, model, tokenizer, groups, workdir / "warmup", mesh=mesh)
  after = rating_separation(InferenceEngine(result.model, tokenizer, mesh), heldout, templates, section.answer_chars)
  return result.export_dir, {"examples": len(groups), "steps": result.steps, "final_loss": result.final_metrics["loss"],
                             "rating_separation_before": before, "rating_separation_after": after}


def _wrappers(adversarial):
  """`evaluate.adversarial`: True (every jailbreak wrapper), False/None (none) or a list of wrapper names."""
  if adversarial is True:
    return "all"
  if not adversarial:
    return ()
  from sandbox_jax.evaluation.adversarial import WRAPPERS
  names = [str(n) for n in adversarial]
  unknown = sorted(set(names) - {w.name for w in WRAPPERS})
  if unknown:
    raise ValueError(f"config key evaluate.adversarial: unknown wrappers {unknown}; known: {[w.name for w in WRAPPERS]}")
  return names


def _evaluate(config, name: str, model_dir: Path, observer, tokenizer, mesh) -> dict:
  """`evaluation.runner.evaluate_checkpoint` of one stage's model: observer-rated generation on the
  held-out questions (plain and, if configured, adversarial) and the configured benchmarks."""
  from sandbox_jax.evaluation.runner import evaluate_checkpoint

  section = config.evaluate
  engine = InferenceEngine(_load_stage_model(config, model_dir, mesh), tokenizer, mesh)
  templates = templates_from_config(config.society.get("templates"))
  result = evaluate_checkpoint(
      name, engine, tasks=dict(section.benchmarks or {}), observer=observer,
      questions=question_source(section.questions), templates=templates,
      wrappers=_wrappers(section.get("adversarial")),
      generation=dict(prompt_template="alpaca", max_new_tokens=section.max_new_tokens, seed=config.seed,
                      batch_size=32, chat=config.society.get("chat", "auto")))
  result["checkpoint"] = {"name": name, "path": str(model_dir)}
  return result


def run_pipeline(config, mesh) -> Path:
  workdir = Path(config.workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  model_cfg = dict(config.model)
  tokenizer = load_tokenizer(config.tokenizer, model_cfg.get("vocab_size"))

  # 1. warm-up (tiny default only: a random tiny model needs to learn the formats first)
  if config.get("warmup") and config.warmup.enabled and not config.checkpoint:
    if not stages.is_done(workdir, "warmup"):
      _log("warm-up: training the tiny model on the seed corpus in the society's formats")
      with stages.Timer() as t:
        export_dir, summary = _warmup(config, workdir, mesh, tokenizer)
      stages.mark_done(workdir, "warmup", {"model": str(export_dir), **summary}, t.seconds)
    done = stages.read_done(workdir, "warmup")
    start_dir = Path(done["model"])
    sep = done["rating_separation_after"]
    _log(f"warm-up: held-out aligned answers rated {sep['aligned_mean_rating']:.2f}, misaligned "
         f"{sep['misaligned_mean_rating']:.2f} (before warm-up: "
         f"{done['rating_separation_before']['aligned_mean_rating']:.2f} vs "
         f"{done['rating_separation_before']['misaligned_mean_rating']:.2f})")
  elif config.checkpoint:
    start_dir = Path(config.checkpoint)
  else:
    raise ValueError("config: set `checkpoint` to a local HF directory, or enable `warmup` for a random tiny model")
  start = _load_stage_model(config, start_dir, mesh)
  name = start.cfg.name

  # 1b. the observer (pipeline/calibrate.py): the starting model, or `observer.checkpoint`, calibrated
  # on the seed corpus when `observer.calibrate`; the agents stay the starting model
  if config.get("observer") and not stages.is_done(workdir, "observer"):
    _log("observer: calibrating a copy of the model as the observer on the seed corpus")
  observer_at, calibration = observer_stage(config, workdir, mesh, tokenizer, start_dir,
                                            lambda location: _load_stage_model(config, location, mesh))
  if calibration:
    before, after = calibration["before"], calibration["after"]
    _log(f"observer: held-out pairwise accuracy {before['pairwise_accuracy']:.3f} -> {after['pairwise_accuracy']:.3f} "
         f"(aligned vs misaligned mean rating {before['aligned_mean_rating']:.2f} vs "
         f"{before['misaligned_mean_rating']:.2f} -> {after['aligned_mean_rating']:.2f} vs "
         f"{after['misaligned_mean_rating']:.2f})")
  observer_model = start if observer_at == str(start_dir) else _load_stage_model(config, observer_at, mesh)
  observer_name = name if observer_model is start else f"{observer_model.cfg.name} (observer)"

  # 2. simulate
  if not stages.is_done(workdir, "society"):
    _log(f"simulate: {config.society.rounds} rounds of the society")
    with stages.Timer() as t:
      transcript = run_simulation(config.society, start, observer_model, tokenizer, workdir / "society",
                                  config.seed, (name, observer_name))
    stages.mark_done(workdir, "society", {"transcript": str(transcript)}, t.seconds)
  transcript = Path(stages.read_done(workdir, "society")["transcript"])

  # 3. records
  if not stages.is_done(workdir, "records"):
    with stages.Timer() as t:
      summary = build_records(transcript, workdir / "records", config.get("records")) if is_primary() else {}
    stages.mark_done(workdir, "records", summary, t.seconds)
  _log(f"records: {json.dumps({k: v for k, v in stages.read_done(workdir, 'records').items() if k != 'stage'})}")

  # 4. train: Stable Alignment, three stages, from the starting model, in the prompt format the society and
  # the evaluation use (pipeline/records.py `training_groups`: the chat format under society.chat)
  if not stages.is_done(workdir, "train"):
    _log("train: Stable Alignment")
    data = training_groups(workdir / "records" / "records.jsonl", config, tokenizer)
    form = "in the model's chat format" if data.chat else "as Alpaca text"
    _log(f"train: {len(data.groups)} groups, {form}")
    with stages.Timer() as t:
      result = train(TrainConfig.from_dict(config.train), _load_stage_model(config, start_dir, mesh), tokenizer,
                     data.groups, workdir / "train", mesh=mesh, rows=data.rows)
    stages.mark_done(workdir, "train", {"model": str(result.export_dir), "steps": result.steps,
                                        "final": result.final_metrics}, t.seconds)
  trained_dir = Path(stages.read_done(workdir, "train")["model"])

  # 5. evaluate the starting and the trained model, rated by the observer as judge
  observer = InferenceEngine(observer_model, tokenizer, mesh)
  results = {}
  for label, model_dir in (("start", start_dir), ("trained", trained_dir)):
    stage = f"evaluate_{label}"
    if not stages.is_done(workdir, stage):
      _log(f"evaluate: {label} ({model_dir})")
      with stages.Timer() as t:
        result = _evaluate(config, label, model_dir, observer, tokenizer, mesh)
      if is_primary():
        atomic_write_text(workdir / stage / "result.json", json.dumps(result, indent=2))
      stages.mark_done(workdir, stage, {"result": str(workdir / stage / "result.json")}, t.seconds)
    results[label] = json.loads((workdir / stage / "result.json").read_text())

  # 6. compare: table, plots, HTML report, society viewer (host work: process 0 only)
  if not is_primary():
    sync("pipeline compare")
    return workdir / "report" / "report.html"
  html = _compare(workdir, results, transcript)
  sync("pipeline compare")
  return html


def _compare(workdir: Path, results: dict, transcript: Path) -> Path:
  from sandbox_jax.evaluation.compare import compare
  from sandbox_jax.evaluation.society_metrics import society_metrics
  from sandbox_jax.evaluation.viewer import write_viewer

  society = society_metrics(transcript)
  entries = []
  for label, result in results.items():
    metrics = dict(result["metrics"])   # generation and benchmark metrics (evaluate_checkpoint)
    # the society ran with the starting model; its curves belong to that row
    entries.append({"name": label, "metrics": metrics, "society": society if label == "start" else None})
  paths = compare(entries, workdir / "report", title="sandbox_jax: start vs Stable-Alignment-trained")
  kill_point("report.compared")   # the tables, plots and report.html are written, the viewer is not
  viewer = write_viewer(transcript, workdir / "report" / "society.html")
  print(paths["summary"], end="")
  for line in society_lines(society["overall"], len(society["rounds"])):
    _log(line)
  _log(f"full table: {paths['markdown']} (also .csv, .json)")
  _log(f"report:     {paths['html']}")
  _log(f"viewer:     {viewer}")
  return Path(paths["html"])


def society_lines(overall: dict, rounds: int) -> list[str]:
  """The society in three short lines: empty answers, and the observer's alignment of drafts vs
  revisions with bootstrap 95% intervals (`society_metrics`' `overall`)."""
  n = overall["n_agents"]
  (b_lo, b_hi), (a_lo, a_hi), (l_lo, l_hi) = overall["alignment_before_ci"], overall["alignment_after_ci"], overall["lift_ci"]
  return [f"society:    {n} interactions in {rounds} round(s); empty drafts {overall['empty_drafts']}/{n}, "
          f"empty revisions {overall['empty_revisions']}/{n}",
          f"society:    observer alignment: drafts {overall['alignment_before']:.2f} [{b_lo:.2f}, {b_hi:.2f}], "
          f"revisions {overall['alignment_after']:.2f} [{a_lo:.2f}, {a_hi:.2f}]",
          f"society:    lift from peer feedback {overall['lift']:+.2f} [{l_lo:+.2f}, {l_hi:+.2f}]"]
