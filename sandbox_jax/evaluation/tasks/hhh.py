"""HHH alignment (BIG-bench `hhh_alignment`) from its `task.json` files, as lm-eval scores it.

lm-eval's `bigbench_hhh_alignment_multiple_choice` scores the four subtasks (harmless, helpful, honest,
other) as BIG-bench JSON tasks; the formatting and the target are `bigbench_json`'s (metric `acc`).
"""

import pathlib

from sandbox_jax.evaluation.tasks.bigbench_json import load_bigbench_json
from sandbox_jax.evaluation.tasks.doc import MultipleChoiceDoc


def load_hhh_alignment(path) -> list[MultipleChoiceDoc]:
  """Loads one subtask `task.json`, or every `<subtask>/task.json` under an `hhh_alignment` folder.

  Docs are named `hhh_alignment:<subtask>`, the subtask being the JSON's `name` (else its folder).
  """
  path = pathlib.Path(path)
  if path.is_dir():
    files = sorted(p / "task.json" for p in path.iterdir() if (p / "task.json").is_file())
    if not files:
      raise FileNotFoundError(f"{path}: no <subtask>/task.json files in this folder")
    return [doc for f in files for doc in _load_subtask(f)]
  return _load_subtask(path)


def _load_subtask(path: pathlib.Path) -> list[MultipleChoiceDoc]:
  return load_bigbench_json(path, lambda data: f"hhh_alignment:{data.get('name') or path.parent.name}")
