"""Stage `records`: transcript → imitation / self-critic / realignment records → rated groups.

Writes `records.jsonl` (the kept records, one per line, with provenance, group by group) and
`sandbox_v1.json` (the released group schema, readable by the official code). The config section
`records` (`data.records.RecordsConfig`; None: the project's defaults) picks the rules, the
deduplication, the order and the subsampling; `data.records.OFFICIAL_RECORDS` is the official
`collect_data.py` setting. Regrouping `records.jsonl` with `read_groups` (what the train stage
does) gives the groups of `sandbox_v1.json`, under any records config.

The training format (`training_groups`, the one code path of the pipeline's train stage and of
`reproduce`'s arms): a model is trained in the prompt format the society and the evaluation ask it
in. With chat formats on (config key `society.chat` = 'auto' and a tokenizer with a chat template)
each group's query is its first record's instruction and input rendered as a chat user message
(`protocol.chat.instruction_prompt`: the instruction, then "\n\n" and the input when there is one;
system prompt `ANSWER_SYSTEM`, None; the assistant turn opened) — an imitation record's prompt is
then token for token the evaluation's answer prompt of its question — and rows are framed by
`chat_rows`: no bos of ours (the template writes its own where it has one), the response ended by the
template's end-of-turn token instead of the eos. Otherwise (society.chat = 'none', or no chat
template, as the tiny byte model's) groups keep the Alpaca text and rows the plain format, unchanged.
The groups are the same either way; only their rendering differs. `sandbox_v1.json` always holds
the Alpaca text (the released schema).

Example: a SmolLM2-135M-Instruct row of an imitation record (question "How do I pick a lock?",
response "I can't help with that."), decoded with its special tokens, broken after each "\n"; the
template writes its default system message since ANSWER_SYSTEM is None; [ ] marks the loss:

    <|im_start|>system\n
    You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n
    <|im_start|>user\n
    How do I pick a lock?<|im_end|>\n
    <|im_start|>assistant\n
    [I can't help with that.<|im_end|>]
"""

import dataclasses
from collections import Counter
from pathlib import Path

from sandbox_jax.data import group_records, read_records, read_transcripts, write_records, write_sandbox_v1
from sandbox_jax.data.batching import PLAIN_ROWS, RowFormat
from sandbox_jax.data.records import RecordsConfig, record_prompt, select_groups
from sandbox_jax.data.schemas import Group
from sandbox_jax.protocol.chat import ANSWER_SYSTEM, ChatFormat, chat_format_of, instruction_prompt


def build_records(transcript: str | Path, out_dir: str | Path, config=None) -> dict:
  cfg = RecordsConfig.from_dict(config)
  out_dir = Path(out_dir)
  rows = read_transcripts(transcript)
  selection = select_groups(rows, cfg)
  if not selection.records:
    raise ValueError(f"{transcript}: the transcript produced no training records")
  write_records(out_dir / "records.jsonl", selection.records)
  write_sandbox_v1(out_dir / "sandbox_v1.json", selection.groups)
  return {"rows": len(rows), "records": len(selection.records), "groups": len(selection.groups),
          "by_type": dict(Counter(r.type for r in selection.records)), "selection": selection.counts}


def read_groups(records: str | Path, config=None, chat: ChatFormat | None = None,
                system: str | None = ANSWER_SYSTEM) -> list[Group]:
  """The groups of a `records.jsonl` written by `build_records` under `config`: its records are in
  group order and deduplicated as the config says, so regrouping keeps a repeated response only where
  the config's deduplication did (`records.dedupe = 'none'` keeps every one). With `chat`, each
  query is the chat rendering of the group's instruction and input (`protocol.chat.instruction_prompt`
  with `system`); without, the Alpaca text."""
  prompt = record_prompt if chat is None else (lambda r: instruction_prompt(chat, r.instruction, r.input, system))
  return group_records(read_records(records), dedupe=RecordsConfig.from_dict(config).dedupe != "none",
                       prompt=prompt)


def chat_rows(tokenizer, chat: ChatFormat | None) -> RowFormat:
  """The row format of groups rendered in `chat`: no bos of ours, the response ended by the chat's
  end-of-turn token (the tokenizer's eos when the template writes none); `PLAIN_ROWS` without chat."""
  if chat is None:
    return PLAIN_ROWS
  end_id = chat.end_of_turn_id(tokenizer)
  return RowFormat(add_bos=False, end_id=tokenizer.eos_id if end_id is None else int(end_id))


@dataclasses.dataclass(frozen=True)
class TrainingGroups:
  groups: list[Group]
  rows: RowFormat          # pass to `training.train(..., rows=...)`
  chat: bool               # rendered in the tokenizer's chat format


def training_groups(records: str | Path, config, tokenizer) -> TrainingGroups:
  """What the train stage trains on (module doc): the groups of `records` under `config.records`,
  in the tokenizer's chat format when `config.society.chat` (default 'auto') turns it on."""
  society = config.get("society") or {}
  chat = chat_format_of(tokenizer, society.get("chat", "auto"))
  return TrainingGroups(read_groups(records, config.get("records"), chat), chat_rows(tokenizer, chat),
                        chat is not None)
