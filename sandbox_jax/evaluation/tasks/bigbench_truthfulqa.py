"""TruthfulQA MC1/MC2 from BIG-bench's `truthful_qa` files, with lm-eval's `truthfulqa_mc1/mc2` definitions.

BIG-bench holds 299 of TruthfulQA's 817 questions (a subset: every number computed from these files
is a 299-question TruthfulQA score and is reported with its n). Two files, same questions, same order:

- `task_mc.json`: BIG-bench JSON task, `examples[i] = {"input": question, "target_scores":
  {answer: 1 for the one true answer, 0 for each false one}}` -> MC1: the true answer (gold 0) then
  the false answers in file order; metric `mc1` = acc.
- `questions.json`: {"prefix": the six-question QA primer, "examples": [{"Question", "Category",
  "True answers", "False answers", "Best answer"}]} -> MC2: every true answer (label 1) then every
  false answer (label 0); metric `mc2` = the normalised probability mass on the true answers.

The context is lm-eval's: QA primer, blank line, "Q: " + question + "\\nA:", each answer a
continuation " " + answer. The primer in both files equals lm-eval's `QA_PRIMER` (task_mc.json's
task_prefix is QA_PRIMER + "\\n", questions.json's prefix QA_PRIMER + "\\n\\n"); a file whose prefix
differs is refused rather than scored with a prompt it does not define.
Docs carry lm-eval's task names (`truthfulqa_mc1`, `truthfulqa_mc2`); the registry names the tasks
`bigbench_truthfulqa_mc1/mc2`. A `truthful_qa` folder may be given instead of the file.
"""

import pathlib

from sandbox_jax.evaluation.tasks.bigbench_json import read_bigbench_task
from sandbox_jax.evaluation.tasks.doc import MultipleChoiceDoc, TaskFormatError, with_delimiter
from sandbox_jax.evaluation.tasks.truthfulqa import QA_PRIMER, truthfulqa_prompt

SUBSET_NOTE = "BIG-bench truthful_qa: 299 of TruthfulQA's 817 questions"


def _file(path, name: str) -> pathlib.Path:
  path = pathlib.Path(path)
  return path / name if path.is_dir() else path


def _answers(path, where: str, value, key: str) -> list[str]:
  if not isinstance(value, list) or not all(isinstance(a, str) and a.strip() for a in value):
    raise TaskFormatError(path, where, f'"{key}" must be a list of non-empty strings')
  return [a.strip() for a in value]


def load_bigbench_truthfulqa_mc1(path) -> list[MultipleChoiceDoc]:
  """MC1 from `task_mc.json`: the one true answer (gold 0) against the false ones."""
  path = _file(path, "task_mc.json")
  data = read_bigbench_task(path)
  if data.get("task_prefix", QA_PRIMER + "\n") != QA_PRIMER + "\n":
    raise TaskFormatError(path, "task_prefix", "is not lm-eval's TruthfulQA QA primer")
  docs = []
  for i, example in enumerate(data["examples"]):
    where = f"examples[{i}]"
    question, scores = example.get("input"), example.get("target_scores")
    if not isinstance(question, str) or not question.strip():
      raise TaskFormatError(path, where, '"input" must be a non-empty question')
    if not isinstance(scores, dict) or not all(v in (0, 1) and not isinstance(v, bool) for v in scores.values()):
      raise TaskFormatError(path, where, '"target_scores" must map answers to 0 or 1')
    true = [a.strip() for a, v in scores.items() if v == 1]
    false = [a.strip() for a, v in scores.items() if v == 0]
    if len(true) != 1 or not false:
      raise TaskFormatError(path, where, f"MC1 needs exactly one true and some false answers, got "
                            f"{len(true)} true and {len(false)} false")
    docs.append(MultipleChoiceDoc(task="truthfulqa_mc1", doc_id=i, context=truthfulqa_prompt(question),
                                  choices=with_delimiter(true + false), gold=0))
  return docs


def load_bigbench_truthfulqa_mc2(path) -> list[MultipleChoiceDoc]:
  """MC2 from `questions.json`: all true answers (label 1) then all false answers (label 0)."""
  path = _file(path, "questions.json")
  data = read_bigbench_task(path)
  if data.get("prefix", QA_PRIMER + "\n\n") != QA_PRIMER + "\n\n":
    raise TaskFormatError(path, "prefix", "is not lm-eval's TruthfulQA QA primer")
  docs = []
  for i, example in enumerate(data["examples"]):
    where = f"examples[{i}]"
    if not isinstance(example, dict) or not isinstance(example.get("Question"), str) or not example["Question"].strip():
      raise TaskFormatError(path, where, 'expected an object with a non-empty "Question"')
    true = _answers(path, where, example.get("True answers"), "True answers")
    false = _answers(path, where, example.get("False answers"), "False answers")
    if not true or not false:
      raise TaskFormatError(path, where, "MC2 needs at least one true and one false answer")
    docs.append(MultipleChoiceDoc(task="truthfulqa_mc2", doc_id=i, context=truthfulqa_prompt(example["Question"]),
                                  choices=with_delimiter(true + false), gold=0,
                                  mc2_labels=[1] * len(true) + [0] * len(false)))
  return docs
