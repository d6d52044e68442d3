"""`sandbox-jax reproduce`: the paper's comparison on one society's records, arm by arm, with CIs.

    prepare   start model (config.checkpoint, or the pipeline's warm-up), the society transcript
              (reproduce.transcript, or the pipeline's simulate stage) and its records — the pipeline's
              own stages, under the same workdir layout (`<workdir>/{warmup,society,records}/DONE.json`)
    arms      each arm = `train` overrides on config.train (None: no training), e.g. the paper's
              base / sft / dpo / rrhf / stable_alignment_staged / stable_alignment_mixed
              (`paper_arms`), or an ablation (`ratio_arms`, `responses_arms`, `stage_arms`):
              ablations are arms like any other; every arm trains on the records in the train stage's
              format (`pipeline.records.training_groups`: the model's chat format under `society.chat`)
              and is evaluated in the same one
    seeds     every trained arm runs once per `reproduce.seeds` (train.seed = the seed: data order,
              response sampling, RNG); the untrained base is evaluated once
    evaluate  every arm × seed: the multiple-choice benchmarks (lm-eval metrics per item), observer-
              rated generation on held-out questions and the same under the jailbreak wrappers
    report    `<workdir>/report/reproduction.{md,json}`: per arm and column the mean over items of the
              seed-averaged item scores with a percentile-bootstrap 95% CI over items; paired tests
              of every arm against `base` and against `sft`; train/eval wall time per arm × seed

Budget: every trained arm starts from the same model and takes the same `train` batches
(groups_per_batch × max_responses rows of max_len tokens) for the same number of optimizer steps —
the baselines (SFT on the best response, DPO, RRHF) and Stable Alignment mixed see all records
shuffled for `sum(stage_steps)` steps, Stable Alignment staged spends the same steps stage by stage
(the trainer skips a stage the records have no groups for, so the report lists the steps each run
took). The tokens each run fed are recorded (sum of the trainer's per-step `tokens`). Ablations that
change `max_responses` change the rows per group by design.

Resumable arm by arm: `<workdir>/arms/<arm>/seed_<s>/` holds the trainer's workdir (which resumes
from its own checkpoints), `eval.json`, and `DONE.json` written last; a rerun skips finished arm ×
seed runs and resumes an interrupted one. The report is rebuilt from the files every time. Each
DONE.json keeps the run's setup (train config and seed, start model, records, docs, questions,
generation settings); a finished run whose setup differs from the config's is refused rather than
mixed into the table.

Statistics (`column_stats`, `paired_test`): items are the benchmark docs or held-out questions, the
same for every arm. An arm's item score is its mean over seeds. CI: percentile bootstrap of the
mean over items (`metrics.bootstrap_ci`, seeded). Paired test: the item differences d_i between
two arms; their mean with a paired-bootstrap 95% CI, and a two-sided sign-flip permutation test
(random signs on d_i, p = (1 + #{|mean| ≥ |observed|}) / (1 + R)). The best arm of a column is
marked only when its CI lies entirely beyond every other arm's CI.
"""

import hashlib
import json
import math
from pathlib import Path

import numpy as np

from sandbox_jax.data.jsonl import atomic_write_text
from sandbox_jax.inference import InferenceEngine
from sandbox_jax.model import load_tokenizer
from sandbox_jax.parallel.distributed import is_primary
from sandbox_jax.pipeline import stages
from sandbox_jax.pipeline.records import build_records, training_groups
from sandbox_jax.pipeline.simulate import question_source, run_simulation
from sandbox_jax.training import TrainConfig, train
from sandbox_jax.training.metrics import read_metrics

BASE, SFT = "base", "sft"
# Columns where lower is better (the alignment lost under a jailbreak wrapper).
LOWER_IS_BETTER = ("alignment_drop",)


def _log(message: str):
  if is_primary():
    print(f"[reproduce] {message}", flush=True)


# ---------------------------------------------------------------------------------------------
# Arms: train overrides, so the paper's comparison and its ablations are the same machinery.

def paper_arms() -> list:
  """base, SFT, DPO, RRHF, Stable Alignment staged and mixed. Each trained arm keeps config.train's
  stage budget: staged spends it stage by stage, the mixed schedule takes its sum (TrainConfig's
  default for 'mixed'), so a CLI override of train.stage_steps moves every arm together."""
  return [[BASE, None],
          [SFT, {"loss": "sft", "schedule": "mixed"}],
          ["dpo", {"loss": "dpo", "schedule": "mixed"}],
          ["rrhf", {"loss": "rrhf", "schedule": "mixed"}],
          ["stable_alignment_staged", {"loss": "stable_alignment", "schedule": "staged"}],
          ["stable_alignment_mixed", {"loss": "stable_alignment", "schedule": "mixed"}]]


def ratio_arms(ratios=(0.0, 0.1, 0.2, 0.5)) -> list:
  """The penalty ratio λ ablation (Stable Alignment staged, the config's stage budget)."""
  return [[f"sa_ratio_{r:g}", {"loss": "stable_alignment", "ratio": float(r)}] for r in ratios]


def responses_arms(counts=(2, 3, 4)) -> list:
  """The responses-per-group ablation (Stable Alignment staged)."""
  return [[f"sa_responses_{n}", {"loss": "stable_alignment", "max_responses": int(n)}] for n in counts]


def stage_arms(stage_steps: dict) -> list:
  """Imitation only; + self-critic; + realignment — the same total steps shared by the stages used."""
  total = sum(int(v) for v in stage_steps.values())
  order = ("imitation", "self_critic", "realignment")
  arms = []
  for used, name in ((1, "sa_imitation"), (2, "sa_imitation_critic"), (3, "sa_all_stages")):
    share = [total // used + (1 if i < total % used else 0) for i in range(used)]
    steps = {stage: (share[i] if i < used else 0) for i, stage in enumerate(order)}
    arms.append([name, {"loss": "stable_alignment", "schedule": "staged", "stage_steps": steps}])
  return arms


def resolve_arms(config) -> list[tuple[str, dict | None]]:
  """[(name, full train dict or None)] from config.reproduce.arms, every arm validated up front."""
  spec = config.reproduce.arms
  if not spec:
    raise ValueError("config key reproduce.arms: no arms")
  base_train = config.train.to_dict() if hasattr(config.train, "to_dict") else dict(config.train)
  out, seen = [], set()
  for i, entry in enumerate(spec):
    if not isinstance(entry, (list, tuple)) or len(entry) != 2 or not isinstance(entry[0], str):
      raise ValueError(f"config key reproduce.arms[{i}]: expected [name, train overrides or None], got {entry!r}")
    name, overrides = entry
    if name in seen or not name or "/" in name:
      raise ValueError(f"config key reproduce.arms[{i}]: arm name {name!r} is empty, repeated or has a '/'")
    seen.add(name)
    if overrides is None:
      out.append((name, None))
      continue
    merged = {**base_train, **dict(overrides)}
    try:
      TrainConfig.from_dict(merged)
    except ValueError as e:
      raise ValueError(f"config key reproduce.arms[{i}] ({name}): {e}") from None
    out.append((name, merged))
  return out


# ---------------------------------------------------------------------------------------------
# Statistics over items.

def column_stats(item_scores_SxN, n_resamples: int, ci_seed: int) -> dict:
  """Mean over items of the seed-averaged scores, its bootstrap 95% CI, and each seed's mean."""
  from sandbox_jax.evaluation.metrics import bootstrap_ci

  scores_SxN = np.asarray(item_scores_SxN, np.float64)
  per_item_N = scores_SxN.mean(axis=0)
  low, high = bootstrap_ci(per_item_N, n_resamples=n_resamples, seed=ci_seed)
  return {"mean": float(per_item_N.mean()), "ci_low": low, "ci_high": high, "n": int(per_item_N.size),
          "seed_means": [float(m) for m in scores_SxN.mean(axis=1)]}


def paired_test(a_N, b_N, n_resamples: int, seed: int) -> dict:
  """a − b over paired items: mean difference, paired-bootstrap 95% CI, sign-flip permutation p."""
  from sandbox_jax.evaluation.metrics import bootstrap_ci

  d_N = np.asarray(a_N, np.float64) - np.asarray(b_N, np.float64)
  observed = float(d_N.mean())
  low, high = bootstrap_ci(d_N, n_resamples=n_resamples, seed=seed)
  rng = np.random.default_rng(seed)
  signs_RxN = rng.choice(np.array([-1.0, 1.0]), size=(n_resamples, d_N.size))
  null_R = (signs_RxN * d_N).mean(axis=1)
  tol = 1e-12 * max(1.0, abs(observed))
  extreme = int(np.sum(np.abs(null_R) >= abs(observed) - tol))
  return {"diff": observed, "ci_low": low, "ci_high": high, "p": (1 + extreme) / (1 + n_resamples),
          "n": int(d_N.size)}


def _better(column: str) -> int:
  return -1 if column.endswith(LOWER_IS_BETTER) else 1


def best_marked(stats_by_arm: dict[str, dict], column: str) -> str | None:
  """The best arm of a column if its CI clears every other arm's CI, else None."""
  if len(stats_by_arm) < 2:
    return None
  sign = _better(column)
  best = max(stats_by_arm, key=lambda arm: sign * stats_by_arm[arm]["mean"])
  b = stats_by_arm[best]
  for arm, s in stats_by_arm.items():
    if arm == best:
      continue
    clears = b["ci_low"] > s["ci_high"] if sign > 0 else b["ci_high"] < s["ci_low"]
    if not clears:
      return None
  return best


# ---------------------------------------------------------------------------------------------
# Evaluation of one model: per-item scores for every column.

def _mc_items(engine, docs, batch_size: int) -> dict[str, list[float]]:
  from sandbox_jax.evaluation.mc_eval import score_docs
  from sandbox_jax.evaluation.metrics import doc_metrics

  items: dict[str, list[float]] = {}
  for doc, lls in zip(docs, score_docs(engine, docs, batch_size)):
    for metric, value in doc_metrics(doc, lls).items():
      items.setdefault(f"{doc.task}/{metric}", []).append(value)
      if doc.task.startswith("hhh_alignment:"):   # the overall HHH score over the four subsets
        items.setdefault(f"hhh_alignment/{metric}", []).append(value)
  return items


def _generative_items(result: dict) -> dict[str, list[float]]:
  plain = result["plain"]["answers"]
  items = {f"gen/{aspect}": [row[aspect] for row in plain] for aspect in ("alignment", "engagement")}
  wrapped = result["adversarial"]
  for name, block in wrapped.items():
    items[f"adv/{name}/alignment"] = [row["alignment"] for row in block["answers"]]
  if wrapped:
    adv_NxW = np.array([items[f"adv/{name}/alignment"] for name in wrapped]).T
    items["adv/mean/alignment"] = adv_NxW.mean(axis=1).tolist()
    items["adv/mean/alignment_drop"] = (np.array(items["gen/alignment"]) - adv_NxW.mean(axis=1)).tolist()
  return items


def evaluate_items(engine, observer, docs, questions, templates, spec, seed: int, chat: str = "auto") -> dict:
  """{"items": {column: per-item floats}, "answers": plain answers} for one model; `chat` (config key
  `society.chat`) as the arms are trained (`pipeline.records.training_groups`)."""
  from sandbox_jax.evaluation.generative import evaluate_generative

  items = _mc_items(engine, docs, int(spec.batch_size)) if docs else {}
  answers = []
  if questions:
    result = evaluate_generative(engine, observer, questions, templates,
                                 wrappers="all" if spec.adversarial else (), prompt_template=spec.prompt_template,
                                 max_new_tokens=int(spec.max_new_tokens), seed=seed,
                                 batch_size=int(spec.batch_size), chat=chat)
    items.update(_generative_items(result))
    answers = [{"question": r["question"], "answer": r["answer"], "alignment": r["alignment"]}
               for r in result["plain"]["answers"]]
  return {"items": items, "answers": answers}


# ---------------------------------------------------------------------------------------------
# The run.

def _prepare(config, workdir: Path, mesh, tokenizer) -> tuple[Path, Path]:
  """(start model directory, records.jsonl): the pipeline's warm-up, simulate and records stages."""
  from sandbox_jax.pipeline.run import _load_stage_model, _warmup

  spec = config.reproduce
  if config.checkpoint:
    start_dir = Path(config.checkpoint)
  elif config.get("warmup") and config.warmup.enabled:
    if not stages.is_done(workdir, "warmup"):
      _log("warm-up: the tiny model learns the society's formats")
      with stages.Timer() as t:
        export_dir, summary = _warmup(config, workdir, mesh, tokenizer)
      stages.mark_done(workdir, "warmup", {"model": str(export_dir), **summary}, t.seconds)
    start_dir = Path(stages.read_done(workdir, "warmup")["model"])
  else:
    raise ValueError("config: set `checkpoint` to the start model, or enable `warmup` for a random tiny model")
  if stages.is_done(workdir, "society") and spec.get("transcript"):
    done = stages.read_done(workdir, "society")
    if done["transcript"] != str(spec.transcript):
      raise ValueError(f"config key reproduce.transcript: {spec.transcript} but {workdir}/society/DONE.json took "
                       f"{done['transcript']}; use a new workdir for another society")
  if not stages.is_done(workdir, "society"):
    if spec.get("transcript"):
      transcript = Path(spec.transcript)
      if not transcript.exists():
        raise FileNotFoundError(f"config key reproduce.transcript: {transcript}: no such file or directory")
      stages.mark_done(workdir, "society", {"transcript": str(transcript), "given": True}, 0.0)
    else:
      _log(f"simulate: {config.society.rounds} rounds of the society")
      start = _load_stage_model(config, start_dir, mesh)
      name = start.cfg.name
      with stages.Timer() as t:
        transcript = run_simulation(config.society, start, start, tokenizer, workdir / "society", config.seed,
                                    (name, name))
      stages.mark_done(workdir, "society", {"transcript": str(transcript)}, t.seconds)
  transcript = Path(stages.read_done(workdir, "society")["transcript"])
  if not stages.is_done(workdir, "records"):
    with stages.Timer() as t:
      summary = build_records(transcript, workdir / "records", config.get("records")) if is_primary() else {}
    stages.mark_done(workdir, "records", summary, t.seconds)
  return start_dir, workdir / "records" / "records.jsonl"


def _load_docs(spec) -> list:
  from sandbox_jax.evaluation.mc_eval import check_tasks
  from sandbox_jax.evaluation.tasks import load_task

  benchmarks = dict(spec.benchmarks or {})
  if not benchmarks:
    return []
  check_tasks(benchmarks)
  limit = int(spec.get("max_docs_per_task") or 0)   # per task as scored (each HHH subset), 0: all
  docs, taken = [], {}
  for name, path in benchmarks.items():
    for doc in load_task(name, path):
      taken[doc.task] = taken.get(doc.task, 0) + 1
      if not limit or taken[doc.task] <= limit:
        docs.append(doc)
  return docs


def _questions(spec) -> list[str]:
  if not spec.questions:
    return []
  questions = question_source(spec.questions)
  limit = int(spec.get("max_questions") or 0)
  return questions[:limit] if limit else questions


def _sha256(text: str) -> str:
  return hashlib.sha256(text.encode("utf-8")).hexdigest()


def rating_contrast(groups) -> dict:
  """How much the records can teach beyond SFT: groups whose responses are not all rated alike, and
  the (best, worse) pairs they hold. With none, DPO sees no pair and Stable Alignment and RRHF reduce
  to SFT on the best response (an uncalibrated observer rating everything alike does this)."""
  pairs = [sum(1 for score in g.scores if score < max(g.scores)) for g in groups]
  return {"groups": len(groups), "groups_with_contrast": sum(1 for n in pairs if n), "pairs": sum(pairs)}


def evaluation_fingerprint(spec, docs, questions, start_dir: Path, records_path: Path) -> dict:
  """What an arm's numbers depend on besides its train config: kept in DONE.json, checked on resume."""
  tasks: dict[str, int] = {}
  for doc in docs:
    tasks[doc.task] = tasks.get(doc.task, 0) + 1
  return {"start": str(start_dir), "records_sha256": hashlib.sha256(records_path.read_bytes()).hexdigest(),
          "tasks": tasks, "docs_sha256": _sha256(json.dumps([[d.context, d.choices, d.gold] for d in docs])),
          "questions": len(questions), "questions_sha256": _sha256(json.dumps(questions)),
          "adversarial": bool(spec.adversarial), "prompt_template": str(spec.prompt_template),
          "max_new_tokens": int(spec.max_new_tokens), "observer": str(spec.get("observer") or "")}


def _check_setup(done_path: Path, saved, current) -> None:
  """A finished arm × seed must have run with the current setup, or the table would mix runs."""
  if json.loads(json.dumps(saved)) != json.loads(json.dumps(current)):
    raise ValueError(f"{done_path}: this run finished with another setup than the config's now "
                     f"(saved {json.dumps(saved, sort_keys=True)}, now {json.dumps(current, sort_keys=True)}); "
                     "use a new workdir or remove that arm's folder")


def run_reproduce(config, mesh) -> Path:
  """Runs (or resumes) every arm × seed and writes the report; returns the Markdown report's path."""
  from sandbox_jax.pipeline.run import _load_stage_model
  from sandbox_jax.protocol.templates import templates_from_config

  spec = config.reproduce
  arms = resolve_arms(config)
  seeds = [int(s) for s in spec.seeds]
  if not seeds or len(set(seeds)) != len(seeds):
    raise ValueError(f"config key reproduce.seeds: need distinct seeds, got {seeds}")
  workdir = Path(config.workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  tokenizer = load_tokenizer(config.tokenizer, dict(config.model).get("vocab_size"))
  start_dir, records_path = _prepare(config, workdir, mesh, tokenizer)
  docs, questions = _load_docs(spec), _questions(spec)
  if not docs and not questions:
    raise ValueError("config keys reproduce.benchmarks and reproduce.questions: nothing to evaluate")
  templates = templates_from_config(config.society.get("templates"))
  observer = None
  if questions:
    observer_dir = Path(spec.observer) if spec.get("observer") else start_dir
    observer = InferenceEngine(_load_stage_model(config, observer_dir, mesh), tokenizer, mesh)
  data = training_groups(records_path, config, tokenizer)   # the train stage's groups and row format
  groups, chat = data.groups, config.society.get("chat", "auto")
  contrast = rating_contrast(groups)
  _log(f"records: {contrast['groups']} groups, {contrast['groups_with_contrast']} with rating contrast, "
       f"{contrast['pairs']} (best, worse) pairs")
  if not contrast["pairs"]:
    _log("warning: no group has a worse-rated response; DPO gets no pair and Stable Alignment and RRHF "
         "reduce to SFT on these records")

  eval_setup = evaluation_fingerprint(spec, docs, questions, start_dir, records_path)
  if getattr(tokenizer, "chat_template", None):   # trained and asked in the chat format or not (absent: no template)
    eval_setup["chat"] = data.chat
  for arm, train_dict in arms:
    for seed in (seeds if train_dict is not None else seeds[:1]):
      name = f"arms/{arm}/seed_{seed}"
      setup = {"train": None if train_dict is None else {**train_dict, "seed": seed}, "eval": eval_setup}
      if stages.is_done(workdir, name):
        _check_setup(workdir / name / "DONE.json", stages.read_done(workdir, name).get("setup"), setup)
        continue
      run_dir = workdir / name
      run_dir.mkdir(parents=True, exist_ok=True)
      summary, model_dir = {"arm": arm, "seed": seed}, start_dir
      with stages.Timer() as t_train:
        if train_dict is not None:
          _log(f"{arm} seed {seed}: training")
          cfg = TrainConfig.from_dict({**train_dict, "seed": seed})
          result = train(cfg, _load_stage_model(config, start_dir, mesh), tokenizer, groups, run_dir / "train",
                         mesh=mesh, progress=False, rows=data.rows)
          # from metrics.jsonl, not result.final_metrics: a run killed after its last step resumes with no step
          rows = [r for r in read_metrics(run_dir / "train") if "loss" in r]
          model_dir = result.export_dir
          summary.update(steps=result.steps, stages=[list(s) for s in result.stages],
                         final_loss=float(rows[-1]["loss"]), losses=[float(r["loss"]) for r in rows],
                         tokens=int(sum(r.get("tokens", 0) for r in rows)))
      _log(f"{arm} seed {seed}: evaluating")
      with stages.Timer() as t_eval:
        engine = InferenceEngine(_load_stage_model(config, model_dir, mesh), tokenizer, mesh)
        evaluation = evaluate_items(engine, observer, docs, questions, templates, spec, int(config.seed), chat)
      if is_primary():
        atomic_write_text(run_dir / "eval.json", json.dumps(evaluation) + "\n")
      summary.update(setup=setup, model=str(model_dir), train_seconds=round(t_train.seconds, 2),
                     eval_seconds=round(t_eval.seconds, 2))
      stages.mark_done(workdir, name, summary, t_train.seconds + t_eval.seconds)
  report = workdir / "report" / "reproduction.md"
  if is_primary():
    tables = build_report(config, workdir, arms, seeds, docs, contrast)
    atomic_write_text(workdir / "report" / "reproduction.json", json.dumps(tables, indent=1) + "\n")
    atomic_write_text(report, render_markdown(tables))
  return report


# ---------------------------------------------------------------------------------------------
# The report.

# The headline metric of each task (lm-eval's: acc for BIG-bench JSON tasks, mc1/mc2 for TruthfulQA).
_HEADLINE = {"truthfulqa_mc1": "mc1", "truthfulqa_mc2": "mc2"}
_GENERATIVE_HEADLINE = ("gen/alignment", "gen/engagement", "adv/mean/alignment", "adv/mean/alignment_drop")


def headline_columns(available: list[str]) -> list[str]:
  """HHH overall then its subsets, the other tasks' headline metric, then the generative columns."""
  tasks = sorted({c.rsplit("/", 1)[0] for c in available if not c.startswith(("gen/", "adv/"))},
                 key=lambda t: (not t.startswith("hhh_alignment"), t != "hhh_alignment", t))
  wanted = [f"{t}/{_HEADLINE.get(t, 'acc')}" for t in tasks] + list(_GENERATIVE_HEADLINE)
  return [c for c in wanted if c in available]


def _columns(spec, available: list[str]) -> list[str]:
  wanted = list(spec.get("columns") or [])
  if wanted:
    missing = [c for c in wanted if c not in available]
    if missing:
      raise ValueError(f"config key reproduce.columns: {missing} not evaluated; evaluated: {available}")
    return wanted
  return headline_columns(available)


def build_report(config, workdir: Path, arms, seeds: list[int], docs, contrast: dict) -> dict:
  """Every statistic of the run, from the files under `<workdir>/arms` (JSON-ready)."""
  spec = config.reproduce
  n_resamples, ci_seed = int(spec.n_resamples), int(spec.ci_seed)
  runs, items = {}, {}
  for arm, train_dict in arms:
    arm_seeds = seeds if train_dict is not None else seeds[:1]
    runs[arm] = [stages.read_done(workdir, f"arms/{arm}/seed_{s}") for s in arm_seeds]
    evals = [json.loads((workdir / f"arms/{arm}/seed_{s}/eval.json").read_text())["items"] for s in arm_seeds]
    items[arm] = {column: np.array([e[column] for e in evals]) for column in evals[0]}
  every = list(next(iter(items.values())))
  columns = _columns(spec, every)
  table = {arm: {c: column_stats(items[arm][c], n_resamples, ci_seed) for c in every} for arm in items}
  best = {c: best_marked({arm: table[arm][c] for arm in table}, c) for c in every}
  tests = {}
  for ref in (BASE, SFT):
    if ref not in items:
      continue
    tests[ref] = {arm: {c: paired_test(items[arm][c].mean(0), items[ref][c].mean(0), n_resamples, ci_seed)
                        for c in every} for arm in items if arm != ref}
  tasks = sorted({doc.task for doc in docs})
  notes = []
  if any(t.startswith("truthfulqa_mc") for t in tasks) and any(
      "bigbench_truthfulqa" in name for name in dict(spec.benchmarks or {})):
    from sandbox_jax.evaluation.tasks.bigbench_truthfulqa import SUBSET_NOTE
    notes.append(f"TruthfulQA: {SUBSET_NOTE} (lm-eval's truthfulqa_mc1/mc2 prompt and metrics).")
  notes.append(f"Records: {contrast['groups']} rated groups, {contrast['groups_with_contrast']} with a worse-rated "
               f"response, {contrast['pairs']} (best, worse) pairs" + (
                   " — none: DPO trained on no pair, Stable Alignment and RRHF reduce to SFT." if not contrast["pairs"]
                   else "."))
  training = {arm: [{k: r.get(k) for k in ("seed", "steps", "stages", "final_loss", "tokens", "losses")}
                    for r in rs] for arm, rs in runs.items()}
  timing = {arm: [{"seed": r["seed"], "train_seconds": r["train_seconds"], "eval_seconds": r["eval_seconds"]}
                  for r in rs] for arm, rs in runs.items()}
  return {"title": str(spec.get("title") or "Stable Alignment vs baselines"), "workdir": str(workdir),
          "arms": {arm: overrides for arm, overrides in (tuple(a) for a in spec.arms)},
          "seeds": seeds, "records": contrast, "columns": columns, "all_columns": every, "tasks": tasks, "notes": notes,
          "statistics": {"ci": f"percentile bootstrap over items, 95%, {n_resamples} resamples, seed {ci_seed}",
                         "paired_test": f"sign-flip permutation over paired items (two-sided, {n_resamples} "
                                        "draws) and paired-bootstrap 95% CI of the difference",
                         "best": "bold only when the best arm's CI clears every other arm's CI"},
          "table": table, "best": best, "tests": tests, "training": training, "timing": timing}


def _fmt(value: float) -> str:
  return "nan" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def render_markdown(report: dict) -> str:
  columns, lines = report["columns"], [f"# {report['title']}", ""]
  lines += [f"Seeds per trained arm: {report['seeds']}. " + report["statistics"]["ci"] + ". " +
            "Cells: mean [95% CI]; " + report["statistics"]["best"] + ". The JSON report holds every "
            f"evaluated column ({len(report['all_columns'])}: acc_norm, each wrapper, ...).", ""]
  lines += [f"- {note}" for note in report["notes"]] + ([""] if report["notes"] else [])
  lines += ["| arm | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
  for arm, row in report["table"].items():
    cells = []
    for c in columns:
      s = row[c]
      cell = f"{_fmt(s['mean'])} [{_fmt(s['ci_low'])}, {_fmt(s['ci_high'])}]"
      cells.append(f"**{cell}**" if report["best"][c] == arm else cell)
    lines.append(f"| {arm} | " + " | ".join(cells) + " |")
  for ref, by_arm in report["tests"].items():
    lines += ["", f"Paired against `{ref}` (difference [95% CI], p; {report['statistics']['paired_test']}):", "",
              "| arm | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for arm, row in by_arm.items():
      lines.append(f"| {arm} | " + " | ".join(
          f"{row[c]['diff']:+.3f} [{_fmt(row[c]['ci_low'])}, {_fmt(row[c]['ci_high'])}], p={row[c]['p']:.3f}"
          for c in columns) + " |")
  lines += ["", "| arm | seed | steps | tokens | final loss | train s | eval s |", "|---|---|---|---|---|---|---|"]
  for arm, rows in report["training"].items():
    for row, t in zip(rows, report["timing"][arm]):
      loss = "" if row["final_loss"] is None else f"{row['final_loss']:.4f}"
      lines.append(f"| {arm} | {row['seed']} | {row['steps'] or 0} | {row['tokens'] or 0} | {loss} | "
                   f"{t['train_seconds']:.1f} | {t['eval_seconds']:.1f} |")
  return "\n".join(lines) + "\n"
