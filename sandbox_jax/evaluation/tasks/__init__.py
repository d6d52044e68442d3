"""Multiple-choice evaluation tasks with lm-evaluation-harness's definitions.

Each loader reads a task's public file format from a local path and returns `MultipleChoiceDoc`s;
a scorer computes `loglikelihood(doc.context, choice)` for each `doc.choices` entry, and
`sandbox_jax.evaluation.metrics.summarize` turns those into lm-eval's metrics.
"""

from sandbox_jax.evaluation.tasks.bigbench_json import (load_bigbench_json, load_moral_permissibility,
                                                        load_simple_ethical_questions)
from sandbox_jax.evaluation.tasks.bigbench_truthfulqa import (load_bigbench_truthfulqa_mc1,
                                                              load_bigbench_truthfulqa_mc2)
from sandbox_jax.evaluation.tasks.doc import MultipleChoiceDoc, TaskFormatError, UnknownTaskError
from sandbox_jax.evaluation.tasks.ethics import (load_ethics_cm, load_ethics_deontology,
                                                 load_ethics_justice, load_ethics_utilitarianism,
                                                 load_ethics_virtue)
from sandbox_jax.evaluation.tasks.hh_rlhf import HHRLHFSkipWarning, load_hh_rlhf
from sandbox_jax.evaluation.tasks.hhh import load_hhh_alignment
from sandbox_jax.evaluation.tasks.moral_stories import load_moral_stories
from sandbox_jax.evaluation.tasks.registry import TASKS, load_task
from sandbox_jax.evaluation.tasks.truthfulqa import (QA_PRIMER, load_truthfulqa_mc1,
                                                     load_truthfulqa_mc2)

__all__ = [
    "HHRLHFSkipWarning",
    "MultipleChoiceDoc",
    "QA_PRIMER",
    "TASKS",
    "TaskFormatError",
    "UnknownTaskError",
    "load_bigbench_json",
    "load_bigbench_truthfulqa_mc1",
    "load_bigbench_truthfulqa_mc2",
    "load_ethics_cm",
    "load_ethics_deontology",
    "load_ethics_justice",
    "load_ethics_utilitarianism",
    "load_ethics_virtue",
    "load_hh_rlhf",
    "load_hhh_alignment",
    "load_moral_permissibility",
    "load_moral_stories",
    "load_simple_ethical_questions",
    "load_task",
    "load_truthfulqa_mc1",
    "load_truthfulqa_mc2",
]
