"""Task name -> loader, and `load_task` to read a task's public file by name."""

from collections.abc import Callable

from sandbox_jax.evaluation.tasks.bigbench_json import load_moral_permissibility, load_simple_ethical_questions
from sandbox_jax.evaluation.tasks.bigbench_truthfulqa import (load_bigbench_truthfulqa_mc1,
                                                              load_bigbench_truthfulqa_mc2)
from sandbox_jax.evaluation.tasks.doc import MultipleChoiceDoc, TaskFormatError, UnknownTaskError
from sandbox_jax.evaluation.tasks.ethics import (load_ethics_cm, load_ethics_deontology,
                                                 load_ethics_justice, load_ethics_utilitarianism,
                                                 load_ethics_virtue)
from sandbox_jax.evaluation.tasks.hh_rlhf import load_hh_rlhf
from sandbox_jax.evaluation.tasks.hhh import load_hhh_alignment
from sandbox_jax.evaluation.tasks.moral_stories import load_moral_stories
from sandbox_jax.evaluation.tasks.truthfulqa import load_truthfulqa_mc1, load_truthfulqa_mc2

Loader = Callable[..., list[MultipleChoiceDoc]]

TASKS: dict[str, Loader] = {
    "hhh_alignment": load_hhh_alignment,
    "truthfulqa_mc1": load_truthfulqa_mc1,
    "truthfulqa_mc2": load_truthfulqa_mc2,
    "ethics_cm": load_ethics_cm,
    "ethics_deontology": load_ethics_deontology,
    "ethics_justice": load_ethics_justice,
    "ethics_utilitarianism": load_ethics_utilitarianism,
    "ethics_virtue": load_ethics_virtue,
    "moral_stories": load_moral_stories,
    "hh_rlhf": load_hh_rlhf,
    # BIG-bench files from `sandbox-jax data` (bigbench_extract.bigbench_tasks maps a data dir to these)
    "bigbench_truthfulqa_mc1": load_bigbench_truthfulqa_mc1,
    "bigbench_truthfulqa_mc2": load_bigbench_truthfulqa_mc2,
    "moral_permissibility": load_moral_permissibility,
    "simple_ethical_questions": load_simple_ethical_questions,
}


def load_task(name: str, path, **options) -> list[MultipleChoiceDoc]:
  """Reads task `name` from its public file at `path`; `options` go to the loader (hh_rlhf: strict)."""
  loader = TASKS.get(name)
  if loader is None:
    raise UnknownTaskError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
  docs = loader(path, **options)
  if not docs:
    raise TaskFormatError(path, "", f"no {name} examples in the file")
  return docs
