"""Question sources: a one-question-per-line text file, or HH-RLHF style JSONL.

JSONL rows may carry the question as `question`, `prompt`, or an HH-RLHF dialogue in `chosen` /
`transcript` ("\\n\\nHuman: ...\\n\\nAssistant: ..."), whose first Human turn is the question.
"""

import gzip
import json
from pathlib import Path

_HUMAN, _ASSISTANT = "Human:", "\n\nAssistant:"


def _first_human_turn(dialogue: str) -> str:
  start = dialogue.find(_HUMAN)
  if start < 0:
    return ""
  text = dialogue[start + len(_HUMAN):]
  end = text.find(_ASSISTANT)
  return (text if end < 0 else text[:end]).strip()


def load_questions(path: str | Path) -> list[str]:
  """All questions of a file, in order; errors name the file and line."""
  path = Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"{path}: question file not found")
  opener = gzip.open if path.suffix == ".gz" else open
  try:
    with opener(path, "rt", encoding="utf-8") as f:
      lines = f.read().splitlines()
  except (OSError, UnicodeDecodeError) as e:
    raise ValueError(f"{path}: unreadable question file: {e}") from e
  questions = []
  is_jsonl = ".jsonl" in path.suffixes
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    if not is_jsonl:
      questions.append(line.strip())
      continue
    try:
      row = json.loads(line)
    except json.JSONDecodeError as e:
      raise ValueError(f"{path}:{number}: invalid JSON: {e.msg}") from e
    if not isinstance(row, dict):
      raise ValueError(f"{path}:{number}: expected a JSON object")
    for key in ("question", "prompt", "chosen", "transcript"):
      if row.get(key) is not None and not isinstance(row[key], str):
        raise ValueError(f"{path}:{number}: field {key!r} must be a string, got {type(row[key]).__name__}")
    question = row.get("question") or row.get("prompt") or _first_human_turn(row.get("chosen") or row.get("transcript") or "")
    if not question.strip():
      raise ValueError(f"{path}:{number}: no question (fields question, prompt, chosen or transcript)")
    questions.append(question.strip())
  if not questions:
    raise ValueError(f"{path}: no questions in file")
  return questions
