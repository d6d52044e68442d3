"""One checkpoint's evaluation, end to end, as the result dict that `compare` takes.

    engine = load_engine("ckpt/stage3")
    result = evaluate_checkpoint("stage3", engine, tasks={"truthfulqa_mc2": "TruthfulQA.csv"},
                                 observer=load_engine("ckpt/observer"), questions=held_out,
                                 templates=Templates(), wrappers="all", transcript="runs/society")
    save_result(result, "eval/stage3.json")
    compare([load_result(p) for p in paths], "eval/report")
"""

import json
import math
import pathlib
from collections.abc import Mapping, Sequence

from sandbox_jax.data.jsonl import atomic_write_text
from sandbox_jax.evaluation.generative import evaluate_generative
from sandbox_jax.evaluation.mc_eval import evaluate_tasks
from sandbox_jax.evaluation.society_metrics import society_metrics
from sandbox_jax.inference import InferenceEngine
from sandbox_jax.model import load_hf_checkpoint, load_tokenizer
from sandbox_jax.model.gguf import is_gguf
from sandbox_jax.model.loading import load_checkpoint


def load_engine(checkpoint, tokenizer=None, mesh=None, **model_overrides) -> InferenceEngine:
  """An engine over a Hugging Face-layout checkpoint directory or a GGUF file. `tokenizer`: 'byte', a
  directory, or None for the checkpoint's own; `model_overrides` replace ModelConfig fields (dtype=...)."""
  if is_gguf(checkpoint):
    model = load_checkpoint(checkpoint, mesh=mesh, **model_overrides)
    path = checkpoint
  else:
    path = pathlib.Path(checkpoint)
    if not path.is_dir():
      raise FileNotFoundError(f"checkpoint {path}: no such directory")
    model = load_hf_checkpoint(path, mesh=mesh, **model_overrides)
  tok = load_tokenizer(path if tokenizer is None else tokenizer, model_vocab_size=model.cfg.vocab_size)
  return InferenceEngine(model, tok, mesh=mesh)


def evaluate_checkpoint(name: str, engine, *, tasks: Mapping[str, object] | None = None,
                        batch_size: int = 64, task_options: Mapping[str, dict] | None = None,
                        observer=None, questions: Sequence[str] | None = None, templates=None,
                        wrappers=(), generation: Mapping | None = None, transcript=None,
                        grid_size: int | None = None) -> dict:
  """Runs the evaluations that have inputs and merges their flat metrics.

  tasks → multiple-choice metrics; questions (with observer and templates) → observer-rated
  generation, plain and under `wrappers` (`generation` holds further `evaluate_generative` keyword
  arguments); transcript → society metrics of the run this checkpoint took part in.
  Returns {"name", "metrics", and "generative" / "society" when run}.
  """
  result: dict = {"name": name, "metrics": {}}
  if tasks:
    result["metrics"].update(evaluate_tasks(engine, tasks, batch_size, task_options))
  if questions:
    if observer is None or templates is None:
      raise ValueError("the generative evaluation needs an observer engine and the observer templates")
    options = {"batch_size": batch_size, **dict(generation or {})}
    result["generative"] = evaluate_generative(engine, observer, questions, templates, wrappers=wrappers,
                                               **options)
    result["metrics"].update(result["generative"]["metrics"])
  if transcript is not None:
    result["society"] = society_metrics(transcript, grid_size)
    result["metrics"].update(result["society"]["summary"])
  if not result["metrics"]:
    raise ValueError(f"{name}: nothing to evaluate (give tasks, questions or a transcript)")
  return result


def _json_safe(value):
  """NaN/inf (e.g. a stderr over one doc) become None; containers are copied recursively."""
  if isinstance(value, float) and not math.isfinite(value):
    return None
  if isinstance(value, Mapping):
    return {str(k): _json_safe(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_json_safe(v) for v in value]
  return value


def save_result(result: Mapping, path) -> pathlib.Path:
  """Writes a result as JSON, atomically (non-finite numbers as null)."""
  path = pathlib.Path(path)
  atomic_write_text(path, json.dumps(_json_safe(result), indent=1, allow_nan=False) + "\n")
  return path


def load_result(path) -> dict:
  """Reads a saved result; errors name the file."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"evaluation result {path}: no such file")
  try:
    result = json.loads(path.read_text(encoding="utf-8"))
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: line {e.lineno}: invalid JSON: {e.msg}") from None
  if not isinstance(result, dict) or not isinstance(result.get("name"), str):
    raise ValueError(f"{path}: not an evaluation result (needs an object with a 'name')")
  return result
