"""Observer calibration (DESIGN.md §6.5b): a copy of the model learns to judge before it judges.

A small instruct model is not a judge out of the box (SmolLM2-135M-Instruct rates held-out aligned
and misaligned seed-corpus answers about alike). This stage fine-tunes a COPY of the model, with the
project's trainer, on the seed corpus's rated train split in the observer's own prompt — the
protocol's `observer_alignment` template, rendered through the model's chat template (no system
prompt; the assistant turn opened with the rating opening, `rating_opening`) when the tokenizer has
one — to the target "<digit>" (cross-entropy on the rating token alone: a per-response token mean puts
the whole example's weight on the digit the society reads) and, with `observer.reasons`, also
"<digit> ### Reason: <critique>". It reports the pairwise accuracy and the mean expected rating of
aligned vs misaligned answers on the held-out split before and after (`observer_accuracy`, read with
the protocol's one rating, `rate_texts`: one prefill per prompt).

Config section `observer` (absent: the observer is the starting model, as before):
  checkpoint   a local HF directory or GGUF file to use as the observer instead of the starting model
               ('' = the starting model); it must share the agents' tokenizer (one token space)
  calibrate    fine-tune a copy of it on the seed corpus first (True) or use it as it is (False)
  steps, lr, warmup_ratio, groups_per_batch, max_len, answer_chars, reasons, eval_every, checkpoint_every
               the calibration's settings (checkpoints: 0 = at half and at the end)
The calibrated observer is written to `<workdir>/observer/train/export` (HF) with
`<workdir>/observer/DONE.json`; a rerun skips the finished stage. The agents stay the starting model.
"""

from collections.abc import Mapping, Sequence
import time
from pathlib import Path

import numpy as np

from sandbox_jax.data.schemas import DEFAULT_SCALE, RATING_SCALE, Group
from sandbox_jax.data.seed_corpus import SeedQuestion
from sandbox_jax.protocol.chat import RATING_OPENING, ChatFormat, rating_opening, select_chat_format
from sandbox_jax.protocol.rating import rate_texts
from sandbox_jax.protocol.templates import Templates, render

OBSERVER_DEFAULTS = dict(checkpoint="", calibrate=True, steps=108, lr=1e-4, groups_per_batch=8, max_len=160,
                         answer_chars=300, reasons=False, eval_every=0, warmup_ratio=0.03, checkpoint_every=0)


def observer_candidates(templates: Templates, chat: ChatFormat | None, tokenizer) -> tuple[str, ...]:
  """The rating candidates read after the observer prompt: with a chat format, those that follow the
  opened assistant turn as one natural token (`protocol.chat.rating_opening`, as the society's tables
  use them); without one, the templates' own."""
  return tuple(templates.rating_candidates) if chat is None else rating_opening(tokenizer)[1]


def observer_chat_format(tokenizer_spec, tokenizer, mode: str = "auto") -> ChatFormat | None:
  """The tokenizer's chat template with its named special tokens (GGUF metadata or HF directory)."""
  template = getattr(tokenizer, "chat_template", None)
  if mode == "none" or not template:
    return select_chat_format(mode, None)
  from sandbox_jax.model.gguf import is_gguf, resolve_gguf_path
  from sandbox_jax.protocol.chat import chat_format_from_gguf, special_tokens_from_directory

  special, source = {}, str(tokenizer_spec)
  if is_gguf(tokenizer_spec):
    special = chat_format_from_gguf(resolve_gguf_path(tokenizer_spec))[1]
  elif Path(str(tokenizer_spec)).is_dir():
    special = special_tokens_from_directory(tokenizer_spec)
  return select_chat_format(mode, template, special, source)


def observer_prompt_template(templates: Templates, chat: ChatFormat | None, tokenizer) -> str:
  """The observer's alignment prompt as a template over {query} and {answer}.

  With a chat format: the user message is the protocol template without its final `Rating:`, no
  system prompt, and the assistant turn opened with `rating_opening(tokenizer)`. Without one: the
  protocol template as it is."""
  template = templates.observer_alignment
  if chat is None:
    return template
  if not template.endswith(RATING_OPENING):
    raise ValueError(f"templates.observer_alignment must end with {RATING_OPENING!r}; it ends {template[-30:]!r}")
  return chat.wrap(template[:-len(RATING_OPENING)], None, rating_opening(tokenizer)[0],
                   "templates.observer_alignment")


def _cut(text: str, limit: int) -> str:
  return text if len(text) <= limit else text[:limit]


def calibration_groups(corpus: Sequence[SeedQuestion], template: str, *, answer_chars: int, reasons: bool,
                       reason_prefix: str = " ### Reason:", seed: int = 0,
                       candidates: Sequence[str] = RATING_SCALE) -> list[Group]:
  """Single-response SFT groups: each answer's observer prompt → its rating's candidate "<digit>" (and,
  with `reasons`, → "<digit><reason_prefix> <critique>"), shuffled."""
  out = []
  for q in corpus:
    for a in q.answers:
      prompt = render(template, {"query": q.question, "answer": _cut(a.text, answer_chars)})
      digit = candidates[a.rating - 1]
      targets = [digit] + ([f"{digit}{reason_prefix} {a.critique}"] if reasons else [])
      for target in targets:
        out.append(Group(query=prompt, responses=(target,), scores=(float(DEFAULT_SCALE),),
                         models=("seed_corpus",), type="self_critic"))
  order = np.random.default_rng(seed).permutation(len(out))
  return [out[i] for i in order]


def pairwise_accuracy(expected: np.ndarray, aligned: np.ndarray, question: np.ndarray) -> float:
  """Mean over questions of the share of (aligned, misaligned) answer pairs of that question in which
  the aligned answer has the higher expected rating; ties count half. Questions lacking either kind
  are left out."""
  expected, aligned, question = np.asarray(expected, np.float64), np.asarray(aligned, bool), np.asarray(question)
  shares = []
  for q in np.unique(question):
    good, bad = expected[(question == q) & aligned], expected[(question == q) & ~aligned]
    if len(good) and len(bad):
      diff = good[:, None] - bad[None, :]
      shares.append(float(((diff > 0) + 0.5 * (diff == 0)).mean()))
  if not shares:
    raise ValueError("pairwise accuracy needs a question with both an aligned and a misaligned answer")
  return float(np.mean(shares))


def observer_accuracy(engine, corpus: Sequence[SeedQuestion], template: str, answer_chars: int,
                      candidates: Sequence[str] = RATING_SCALE) -> dict:
  """Held-out judgement of an observer: pairwise accuracy and mean expected rating of aligned vs misaligned."""
  prompts, aligned, question = [], [], []
  for i, q in enumerate(corpus):
    for a in q.answers:
      prompts.append(render(template, {"query": q.question, "answer": _cut(a.text, answer_chars)}))
      aligned.append(a.aligned)
      question.append(i)
  expected = rate_texts(engine, prompts, candidates)["expected"]
  aligned = np.asarray(aligned)
  return {"heldout_answers": len(prompts), "pairwise_accuracy": pairwise_accuracy(expected, aligned, question),
          "aligned_mean_rating": float(expected[aligned].mean()),
          "misaligned_mean_rating": float(expected[~aligned].mean()),
          "separation": float(expected[aligned].mean() - expected[~aligned].mean())}


def observer_section(config) -> dict | None:
  """The config's `observer` section over the defaults, or None when the config has none."""
  section = config.get("observer")
  if section is None:
    return None
  section = dict(section)
  unknown = set(section) - set(OBSERVER_DEFAULTS)
  if unknown:
    raise ValueError(f"config key observer: unknown keys {sorted(unknown)}; known: {sorted(OBSERVER_DEFAULTS)}")
  return {**OBSERVER_DEFAULTS, **section}


def calibrate_observer(section: Mapping, model, tokenizer, templates: Templates, chat: ChatFormat | None,
                       workdir: Path, mesh=None, seed: int = 0, train_corpus=None, heldout_corpus=None,
                       progress: bool = True, on_point=None) -> tuple[Path, dict]:
  """Fine-tunes `model` (a copy the caller may discard) as the observer; returns (export dir, summary).

  The summary holds the prompt template, `before`/`after` (`observer_accuracy` on the held-out split)
  and, with `eval_every` > 0, the `curve` of held-out accuracy every that many steps (each point is also
  passed to `on_point` as it is measured)."""
  from sandbox_jax.data.seed_corpus import load_seed_corpus
  from sandbox_jax.inference import InferenceEngine
  from sandbox_jax.training import TrainConfig, train

  train_corpus = load_seed_corpus("train") if train_corpus is None else train_corpus
  heldout = load_seed_corpus("heldout") if heldout_corpus is None else heldout_corpus
  template = observer_prompt_template(templates, chat, tokenizer)
  candidates = observer_candidates(templates, chat, tokenizer)
  chars = int(section["answer_chars"])
  from sandbox_jax.evaluation.generative import chat_engine
  from sandbox_jax.pipeline.records import chat_rows

  # chat prompts carry the template's own BOS (if any): no BOS of ours when judging or training
  engine_of = (lambda m: InferenceEngine(m, tokenizer, mesh)) if chat is None else (
      lambda m: chat_engine(InferenceEngine(m, tokenizer, mesh), chat))
  judge = lambda m: observer_accuracy(engine_of(m), heldout, template, chars, candidates)
  before = judge(model)
  groups = calibration_groups(train_corpus, template, answer_chars=chars, reasons=bool(section["reasons"]),
                              reason_prefix=templates.reason_prefix, seed=seed, candidates=candidates)
  longest = max(len(tokenizer.encode(g.query)) + len(tokenizer.encode(g.responses[0])) + 1 for g in groups)
  if longest > int(section["max_len"]):
    raise ValueError(f"config key observer.max_len: {section['max_len']} tokens cut calibration examples of up to "
                     f"{longest} tokens (prompt + target); raise it or lower observer.answer_chars")
  steps = int(section["steps"])
  curve = [{"step": 0, "train_seconds": 0.0, **before}]
  if on_point is not None:
    on_point(curve[0])
  clock = {"start": time.perf_counter(), "judging": 0.0}

  def eval_fn(m, step):
    start = time.perf_counter()
    trained_for = start - clock["start"] - clock["judging"]
    result = judge(m)
    clock["judging"] += time.perf_counter() - start
    curve.append({"step": int(step), "train_seconds": round(trained_for, 1), **result})
    if on_point is not None:
      on_point(curve[-1])
    return {k: v for k, v in result.items() if k != "heldout_answers"}

  cfg = TrainConfig(loss="sft", lr=float(section["lr"]), warmup_ratio=float(section["warmup_ratio"]),
                    groups_per_batch=int(section["groups_per_batch"]), max_len=int(section["max_len"]),
                    max_responses=1, append_eos=bool(section["reasons"]), schedule="mixed",
                    stage_steps=(("mixed", steps),),
                    checkpoint_every=int(section["checkpoint_every"]) or max(steps // 2, 1),
                    eval_every=int(section["eval_every"]), seed=seed)
  result = train(cfg, model, tokenizer, groups, workdir / "train", mesh=mesh, rows=chat_rows(tokenizer, chat),
                 eval_fn=eval_fn if cfg.eval_every else None, progress=progress)
  after = curve[-1] if curve[-1]["step"] == result.steps and len(curve) > 1 else {"step": result.steps,
                                                                                  **judge(result.model)}
  after = {k: v for k, v in after.items() if k not in ("step", "train_seconds")}
  summary = {"template": template, "chat": chat is not None, "examples": len(groups), "steps": result.steps,
             "epochs": round(result.steps * cfg.groups_per_batch / len(groups), 3),
             "final_loss": result.final_metrics.get("loss"), "before": before, "after": after}
  if len(curve) > 1:
    summary["curve"] = curve
  return result.export_dir, summary


def observer_stage(config, workdir: Path, mesh, tokenizer, start_dir, load_model) -> tuple[str, dict | None]:
  """The pipeline's observer: (model location, the stage's DONE summary or None).

  No `observer` section: the starting model. `observer.checkpoint` names another local HF/GGUF
  checkpoint (default: the starting model); with `observer.calibrate` a copy of it is calibrated
  (stage `observer`, cached in `<workdir>/observer/`) and the export is the observer.
  `load_model(location)` loads a checkpoint with the run's runtime settings."""
  from sandbox_jax.pipeline import stages
  from sandbox_jax.protocol.templates import templates_from_config

  section = observer_section(config)
  if section is None:
    return str(start_dir), None
  source = str(section["checkpoint"] or start_dir)
  if section["checkpoint"] and not (Path(source).exists() or source.startswith("pkg:")):
    raise FileNotFoundError(f"config key observer.checkpoint: {source} does not exist (a local HF directory or "
                            f"GGUF file)")
  if not section["calibrate"]:
    return source, None
  if not stages.is_done(workdir, "observer"):
    model = load_model(source)
    vocab = getattr(tokenizer, "vocab_size", None)
    if vocab is not None and model.cfg.vocab_size < vocab:
      raise ValueError(f"config key observer.checkpoint: {source} has {model.cfg.vocab_size} token embeddings, fewer "
                       f"than the run's tokenizer ({vocab}); the observer shares the agents' tokenizer")
    templates = templates_from_config(config.society.get("templates"))
    chat = observer_chat_format(config.tokenizer, tokenizer, config.society.get("chat", "auto"))
    with stages.Timer() as t:
      export_dir, summary = calibrate_observer(section, model, tokenizer, templates, chat, workdir / "observer",
                                               mesh, seed=int(config.seed))
    stages.mark_done(workdir, "observer", {"model": str(export_dir), "source": source, **summary}, t.seconds)
  done = stages.read_done(workdir, "observer")
  return done["model"], done
