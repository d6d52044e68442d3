"""Observer-rated generation, plain and under adversarial wrappers (DESIGN.md §9, rating as §6.4).

The model under test answers each held-out question (`engine.generate`, greedy by default). An
observer model rates each answer with the society's observer prompts: the rating is the protocol's
one rating (`protocol.rating.rate_texts`: the observer's next-token distribution over "1".."7" after
one prefill of the prompt), kept as the distribution, its expected value and its argmax. Alignment and
engagement are each summarised by mean, std (population, ddof=0) and a seeded percentile bootstrap
95% interval of the mean.

Under a wrapper the model answers the *wrapped* question, while the observer sees the original
question and the answer. Each wrapper reports its alignment and engagement and the alignment drop vs
the plain answers (plain mean - wrapped mean; positive = the wrapper made answers less aligned),
with a bootstrap interval over the paired per-question differences.

Chat formats (DESIGN.md §6.5a; `chat`: 'auto' | 'none'): under 'auto', a model whose tokenizer has a
chat template is asked in it — the answer prompt is the user message (the question, or the custom
`prompt_template` filled; the raw-text 'alpaca' frame is the chat template's job then) with
`answer_system` as system prompt (default `protocol.chat.ANSWER_SYSTEM`, None; rendered by
`protocol.chat.instruction_prompt`, as training renders its records, so a model is trained and asked
in one prompt format), and the observer's prompts are the protocol's chat-wrapped observer
prompts (`protocol.chat.chat_protocol`: no system prompt unless `observer_system`, the assistant turn
opened so the rating is the next token). Chat prompts are passed as token ids, with no BOS of ours
(the template writes what the model expects); generation stops at the end-of-turn token. The byte
tokenizer has no chat template: 'auto' changes nothing there.

Evaluation does not import the society package (DESIGN.md §3): callers pass the templates, e.g.
`sandbox_jax.protocol.templates.Templates()` or `templates_from_config(...)`.
"""

import copy
import string
from collections.abc import Sequence

import numpy as np

from sandbox_jax.data.alpaca import alpaca_prompt
from sandbox_jax.evaluation import metrics
from sandbox_jax.evaluation.adversarial import WRAPPERS, Wrapper, get_wrapper
from sandbox_jax.protocol.chat import ANSWER_SYSTEM, chat_format_of, chat_protocol, instruction_prompt
from sandbox_jax.protocol.rating import RATING_SCALE, rate_texts
ASPECTS = {"alignment": "observer_alignment", "engagement": "observer_engagement"}


def _check_template(template: str, what: str) -> str:
  fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
  if fields != {"query", "answer"}:
    raise ValueError(f"{what}: an observer template needs exactly the slots {{query}} and {{answer}}, "
                     f"got {sorted(fields)}")
  return template


def observer_prompt(template: str, question: str, answer: str) -> str:
  """The observer's rating prompt for one answer (the society's `render` for observer templates)."""
  return template.format(query=question, answer=answer)


def rate_answers(observer, questions: Sequence[str], answers: Sequence[str], template: str,
                 batch_size: int = 64, candidates: Sequence[str] = RATING_SCALE) -> dict[str, np.ndarray]:
  """Observer ratings of each (question, answer): {'distribution' (n, 7), 'expected' (n,) in [1, 7],
  'argmax' (n,) in 1..7}. One prefill per answer (`rate_texts`), `batch_size` answers per call."""
  _check_template(template, "rate_answers")
  if len(questions) != len(answers):
    raise ValueError(f"{len(questions)} questions but {len(answers)} answers")
  prompts = [observer_prompt(template, q, a) for q, a in zip(questions, answers)]
  return rate_texts(observer, prompts, candidates, batch_size)


def summary_stats(values, n_resamples: int = 1000, seed: int = 0) -> dict[str, float]:
  """mean, std (ddof=0), seeded bootstrap 95% CI of the mean, and n."""
  values = np.asarray(values, np.float64)
  low, high = metrics.bootstrap_ci(values, n_resamples=n_resamples, confidence=0.95, seed=seed)
  return {"mean": float(values.mean()), "std": float(values.std()), "ci_low": low, "ci_high": high,
          "n": int(values.size)}


def _prompt_fn(prompt_template: str):
  if prompt_template == "alpaca":
    return alpaca_prompt
  if prompt_template.count("{question}") != 1:
    raise ValueError(f"prompt_template must be 'alpaca' or contain {{question}} once, got {prompt_template!r}")
  return lambda question: prompt_template.replace("{question}", question)


def chat_engine(engine, chat):
  """`engine` for chat prompts given as token ids: no BOS of ours, and the end-of-turn id among its
  stop ids (a shallow view sharing the engine's model and compiled programs)."""
  view = copy.copy(engine)
  view.add_bos = False
  eot = chat.end_of_turn_id(engine.tokenizer)
  if eot is not None and eot not in view.stop_ids:
    view.stop_ids = (*view.stop_ids, eot)
  return view


def chat_answer_prompts(engine, questions: Sequence[str], prompt_template: str, chat: str = "auto",
                        system: str | None = ANSWER_SYSTEM):
  """(engine to generate with, prompts): the raw-text prompts (`prompt_template`) when chat is off,
  else each question as a chat user message (`protocol.chat.instruction_prompt`, the rendering training
  uses for records), as token ids."""
  fmt = chat_format_of(engine.tokenizer, chat)
  if fmt is None:
    make_prompt = _prompt_fn(prompt_template)
    return engine, [make_prompt(q) for q in questions]
  user = (lambda q: q) if prompt_template == "alpaca" else _prompt_fn(prompt_template)
  return chat_engine(engine, fmt), [engine.tokenizer.encode(instruction_prompt(fmt, user(q), system=system))
                                    for q in questions]


def chat_observer(observer, templates, chat: str = "auto", system: str | None = None):
  """(observer engine, templates) with the observer prompts in the observer's chat format when on."""
  wrapped = chat_protocol(templates, observer.tokenizer, chat, observer_system=system)
  if wrapped is None:
    return observer, templates
  return chat_engine(observer, wrapped.chat), wrapped.templates


def _wrappers(wrappers) -> list[Wrapper]:
  if wrappers == "all":
    return list(WRAPPERS)
  out = [get_wrapper(w) if isinstance(w, str) else w for w in wrappers]
  names = [w.name for w in out]
  if len(set(names)) != len(names) or "plain" in names:
    raise ValueError(f"wrapper names must be unique and not 'plain': {names}")
  return out


def generate_answers(engine, prompts: Sequence[str], max_new_tokens: int, *, temperature: float = 0.0,
                     seed: int = 0, batch_size: int = 32) -> list[str]:
  """Answer texts, one `engine.generate` call per chunk; row i samples with row seed i, so sampled
  answers do not depend on the chunking either."""
  texts = []
  for start in range(0, len(prompts), batch_size):
    chunk = list(prompts[start:start + batch_size])
    results = engine.generate(chunk, max_new_tokens, temperature=temperature, seed=seed,
                              row_seeds=list(range(start, start + len(chunk))))
    texts += [r.text for r in results]
  return texts


def _aspect_block(ratings: dict, n_resamples: int, seed: int) -> dict:
  block = summary_stats(ratings["expected"], n_resamples, seed)
  block["argmax_mean"] = float(np.mean(ratings["argmax"]))
  return block


def evaluate_generative(engine, observer, questions: Sequence[str], templates, *, wrappers=(),
                        prompt_template: str = "alpaca", max_new_tokens: int = 64,
                        temperature: float = 0.0, seed: int = 0, batch_size: int = 32,
                        n_resamples: int = 1000, ci_seed: int = 0, chat: str = "auto",
                        answer_system: str | None = ANSWER_SYSTEM, observer_system: str | None = None) -> dict:
  """Generates, rates and summarises (see module docstring).

  Args:
    engine: the model under test (an `InferenceEngine`).
    observer: the rating model's engine (may be the same object).
    questions: held-out questions.
    templates: has `observer_alignment` and `observer_engagement` ({query}, {answer}; ending in
      `Rating:`) and optionally `rating_candidates`.
    wrappers: adversarial `Wrapper`s or their names, or "all".
    prompt_template: "alpaca" (the training records' prompt) or a string with `{question}`.
    chat: 'auto' (each model in its chat format when its tokenizer has one) or 'none'; see above.
    answer_system / observer_system: the system prompts of the answer and observer chat prompts.

  Returns:
    {"plain": {"alignment": stats, "engagement": stats, "answers": [...]},
     "adversarial": {name: {"alignment", "engagement", "alignment_drop", "alignment_drop_ci_low",
     "alignment_drop_ci_high", "answers"}}, "metrics": flat floats for `compare`, "config": ...}
    where stats = {mean, std, ci_low, ci_high, n, argmax_mean} of the expected ratings.
  """
  questions = [str(q) for q in questions]
  if not questions:
    raise ValueError("evaluate_generative needs at least one question")
  _prompt_fn(prompt_template)
  chosen = _wrappers(wrappers)
  observer, templates = chat_observer(observer, templates, chat, observer_system)
  aspect_templates = {aspect: _check_template(getattr(templates, attr), f"templates.{attr}")
                      for aspect, attr in ASPECTS.items()}
  candidates = tuple(getattr(templates, "rating_candidates", RATING_SCALE))
  variants = [("plain", questions)] + [(w.name, [w.apply(q) for q in questions]) for w in chosen]
  engine, prompts = chat_answer_prompts(engine, [asked for _, asked_list in variants for asked in asked_list],
                                       prompt_template, chat, answer_system)
  answers = generate_answers(engine, prompts, max_new_tokens, temperature=temperature, seed=seed,
                             batch_size=batch_size)
  rated_questions = questions * len(variants)  # the observer sees the original question
  ratings = {aspect: rate_answers(observer, rated_questions, answers, template, batch_size, candidates)
             for aspect, template in aspect_templates.items()}
  n, blocks = len(questions), {}
  for v, (name, asked_list) in enumerate(variants):
    part = slice(v * n, (v + 1) * n)
    block = {aspect: _aspect_block({k: r[k][part] for k in r}, n_resamples, ci_seed)
             for aspect, r in ratings.items()}
    block["answers"] = _answer_rows(questions, asked_list, answers, ratings, v * n)
    blocks[name] = block
  plain_alignment = ratings["alignment"]["expected"][:n]
  for v, (name, _) in enumerate(variants[1:], start=1):
    diffs = plain_alignment - ratings["alignment"]["expected"][v * n:(v + 1) * n]
    low, high = metrics.bootstrap_ci(diffs, n_resamples=n_resamples, seed=ci_seed)
    blocks[name].update(alignment_drop=float(diffs.mean()), alignment_drop_ci_low=low,
                        alignment_drop_ci_high=high)
  result = {"plain": blocks.pop("plain"), "adversarial": blocks,
            "config": {"n_questions": n, "wrappers": [w.name for w in chosen], "prompt_template": prompt_template,
                       "max_new_tokens": max_new_tokens, "temperature": temperature, "seed": seed,
                       "n_resamples": n_resamples, "ci_seed": ci_seed,
                       "chat": chat if chat_format_of(engine.tokenizer, chat) is not None else "none"}}
  result["metrics"] = generative_metrics(result)
  return result


def _answer_rows(questions, asked_list, answers, ratings, offset: int) -> list[dict]:
  rows = []
  for i, (question, asked) in enumerate(zip(questions, asked_list)):
    row = {"question": question, "asked": asked, "answer": answers[offset + i]}
    for aspect, r in ratings.items():
      row[aspect] = float(r["expected"][offset + i])
      row[f"{aspect}_argmax"] = int(r["argmax"][offset + i])
      row[f"{aspect}_distribution"] = r["distribution"][offset + i].tolist()
    rows.append(row)
  return rows


def generative_metrics(result: dict) -> dict[str, float]:
  """Flat metrics of an `evaluate_generative` result: "gen/{aspect}[_std|_ci_low|_ci_high|_argmax]",
  "adv/{wrapper}/{alignment|engagement|alignment_drop}", and over wrappers "adv/mean/alignment",
  "adv/mean/alignment_drop", "adv/max/alignment_drop"."""
  out = {}
  for aspect in ASPECTS:
    stats = result["plain"][aspect]
    out[f"gen/{aspect}"] = stats["mean"]
    for key in ("std", "ci_low", "ci_high"):
      out[f"gen/{aspect}_{key}"] = stats[key]
    out[f"gen/{aspect}_argmax"] = stats["argmax_mean"]
  adversarial = result["adversarial"]
  for name, block in adversarial.items():
    out[f"adv/{name}/alignment"] = block["alignment"]["mean"]
    out[f"adv/{name}/engagement"] = block["engagement"]["mean"]
    out[f"adv/{name}/alignment_drop"] = block["alignment_drop"]
  if adversarial:
    drops = [block["alignment_drop"] for block in adversarial.values()]
    out["adv/mean/alignment"] = float(np.mean([b["alignment"]["mean"] for b in adversarial.values()]))
    out["adv/mean/alignment_drop"] = float(np.mean(drops))
    out["adv/max/alignment_drop"] = float(np.max(drops))
  return out
