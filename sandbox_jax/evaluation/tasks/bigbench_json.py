"""BIG-bench JSON multiple-choice tasks (`task.json` with `examples[].target_scores`), as lm-eval scores them.

lm-eval's `bigbench_<task>_multiple_choice` (multiple_choice_template_yaml) reads the Hugging Face
`bigbench` dataset (zero-shot), whose fields come from BIG-bench's JSON-task formatting:

- `inputs` = task_prefix + example_input_prefix + input [+ choice_prefix + choice ...] +
  example_output_prefix, with `.strip()` applied by the dataset script;
- `multiple_choice_targets` = the keys of `target_scores` in file order, each stripped;
- `targets[0]` = the first choice with the highest score (or the explicit `target`).

lm-eval then uses `doc_to_text: inputs`, `doc_to_choice: multiple_choice_targets`,
`doc_to_target: multiple_choice_targets.index(targets[0])`, target delimiter " ", metric `acc`.
The prefixes default to BIG-bench's "\\nQ: ", "\\nA: " and "\\n  choice: " unless the task.json sets
them. When a task sets `append_choices_to_input` (true by default in BIG-bench) the choices are
listed in the input in a permutation drawn from `numpy.random.RandomState(42)` per example in file
order, which is how BIG-bench's JsonTask draws them. Used for `hhh_alignment`'s subtasks,
`moral_permissibility` and `simple_ethical_questions`.
"""

import pathlib
from collections.abc import Callable

import numpy as np

from sandbox_jax.evaluation.tasks.doc import MultipleChoiceDoc, TaskFormatError, with_delimiter
from sandbox_jax.evaluation.tasks.fileio import read_json

_SUBTASK_SEED = 42


def read_bigbench_task(path) -> dict:
  """A BIG-bench task object with an "examples" list; errors name the file."""
  data = read_json(path)
  if not isinstance(data, dict) or not isinstance(data.get("examples"), list):
    raise TaskFormatError(path, "", 'expected a BIG-bench task object with an "examples" list')
  return data


def load_bigbench_json(path, task: str | Callable[[dict], str]) -> list[MultipleChoiceDoc]:
  """Docs of one BIG-bench JSON task file; `task` names them (or maps the parsed JSON to a name)."""
  path = pathlib.Path(path)
  data = read_bigbench_task(path)
  task = task(data) if callable(task) else task
  task_prefix = str(data.get("task_prefix", ""))
  input_prefix = data.get("example_input_prefix", "\nQ: ")
  output_prefix = data.get("example_output_prefix", "\nA: ")
  choice_prefix = data.get("choice_prefix", "\n  choice: ")
  append_choices = data.get("append_choices_to_input", True)
  rng = np.random.RandomState(_SUBTASK_SEED)
  docs = []
  for i, example in enumerate(data["examples"]):
    where = f"examples[{i}]"
    if not isinstance(example, dict) or not isinstance(example.get("input"), str):
      raise TaskFormatError(path, where, 'expected an object with a string "input"')
    scores = example.get("target_scores")
    if not isinstance(scores, dict) or len(scores) < 2:
      raise TaskFormatError(path, where, '"target_scores" must map at least 2 answers to scores')
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in scores.values()):
      raise TaskFormatError(path, where, '"target_scores" values must be numbers')
    text = example["input"]
    if append_choices:
      text += choice_prefix + choice_prefix.join(rng.permutation(sorted(scores)))
    context = (task_prefix + input_prefix + text + output_prefix).strip()
    target = _target(path, where, example, scores).strip()
    choices = [a.strip() for a in scores]
    if target not in choices:
      raise TaskFormatError(path, where, f'"target" {target!r} is not one of the answers')
    docs.append(MultipleChoiceDoc(task=task, doc_id=i, context=context,
                                  choices=with_delimiter(choices), gold=choices.index(target)))
  return docs


def _target(path, where: str, example: dict, scores: dict) -> str:
  """BIG-bench's target: the explicit "target" (first if a list), else the first top-scored answer."""
  if "target" in example:
    target = example["target"]
    target = target[0] if isinstance(target, list) and target else target
    if not isinstance(target, str):
      raise TaskFormatError(path, where, '"target" must be a string or a list of strings')
    return target
  best = max(scores.values())
  return next(answer for answer in scores if scores[answer] == best)


def load_moral_permissibility(path) -> list[MultipleChoiceDoc]:
  """BIG-bench `moral_permissibility/task.json` (342 yes/no questions on trolley-style dilemmas)."""
  return load_bigbench_json(path, "moral_permissibility")


def load_simple_ethical_questions(path) -> list[MultipleChoiceDoc]:
  """BIG-bench `simple_ethical_questions/task.json` (115 four-way questions on AI-alignment ethics)."""
  return load_bigbench_json(path, "simple_ethical_questions")
