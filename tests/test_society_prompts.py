"""Token-space prompt assembly, the documented truncation order, memory, and question sources."""

import gzip
import json

import jax.numpy as jnp
import numpy as np
import pytest

from sandbox_jax.model import ByteTokenizer
from sandbox_jax.society import SocietyConfig, Templates
from sandbox_jax.society import memory as mem
from sandbox_jax.protocol.assemble import Segment, assemble, literal, pad_token_rows
from sandbox_jax.society.questions import load_questions

TOK = ByteTokenizer()
PAD = TOK.pad_id


def _slot(texts, width, **kw):
  tokens, lengths = pad_token_rows([TOK.encode(t) for t in texts], width, PAD)
  return Segment(jnp.asarray(tokens), jnp.asarray(lengths), **kw)


def _decode(tokens, valid):
  return [TOK.decode(np.asarray(t)[np.asarray(v)]) for t, v in zip(tokens, valid)]


def test_assembly_concatenates_and_left_pads():
  segs = [literal(TOK.encode("Q: ")), _slot(["hi", "longer question"], 20), literal(TOK.encode("\nA:"))]
  tokens, valid = assemble(segs, 2, 32, PAD)
  assert _decode(tokens, valid) == ["Q: hi\nA:", "Q: longer question\nA:"]
  assert bool(valid[0, -1]) and not bool(valid[0, 0])  # left padded: the last column is real


def test_memory_block_is_optional_per_row():
  segs = [literal(TOK.encode("[")), literal(TOK.encode("mem:"), optional=True),
          _slot(["m0", "m1"], 4, optional=True), _slot(["q0", "q1"], 4)]
  tokens, valid = assemble(segs, 2, 16, PAD, present_R=jnp.asarray([True, False]))
  assert _decode(tokens, valid) == ["[mem:m0q0", "[q1"]


def test_truncation_order_memory_first_then_draft_then_the_front():
  segs = [literal(TOK.encode("START ")), literal(TOK.encode("memory "), optional=True),
          _slot(["draft text"], 16, truncate_rank=0), literal(TOK.encode(" END"))]
  full = "START memory draft text END"
  fits = assemble(segs, 1, len(full), PAD, jnp.asarray([True]))
  assert _decode(*fits) == [full]
  no_memory = assemble(segs, 1, len(full) - 1, PAD, jnp.asarray([True]))
  assert _decode(*no_memory) == ["START draft text END"]          # 1. memory dropped whole
  cut_draft = assemble(segs, 1, len("START draft END"), PAD, jnp.asarray([True]))
  assert _decode(*cut_draft) == ["START draft END"]                # 2. draft cut from its end
  front = assemble(segs, 1, 6, PAD, jnp.asarray([True]))
  assert _decode(*front) == ["T  END"]        # 3. draft gone ("START " + " END"), the last tokens survive


def test_memory_nearest_retrieval_threshold_and_store():
  m = mem.empty_memory(2, 3, 4, 4, 2, PAD)
  e = lambda x, y: jnp.asarray([x, y]) / np.hypot(x, y)
  tok = jnp.ones((2, 4), jnp.int32)
  m = mem.store(m, tok, jnp.asarray([2, 2]), tok, jnp.asarray([3, 3]), jnp.stack([e(1, 0), e(0, 1)]),
                jnp.asarray([10, 11]), 0, jnp.asarray([5.0, 6.0]))
  entry, hit, dist = mem.retrieve_nearest(m, jnp.asarray([0, 1, 0]), jnp.stack([e(1, 0.1), e(1, 0), e(0, 1)]))
  assert hit.tolist() == [True, False, False] and entry[0] == 0
  np.testing.assert_allclose(dist[1], 1.0, atol=1e-6)               # orthogonal: distance 1
  again = mem.store(m, tok, jnp.asarray([2, 2]), tok, jnp.asarray([1, 1]), jnp.stack([e(1, 0), e(1, 0)]),
                    jnp.asarray([10, 12]), 1, jnp.asarray([1.0, 1.0]))
  assert again.question_ids_AxC.tolist() == [[10, -1, -1], [11, 12, -1]]  # agent 0 already knew question 10
  assert again.next_slot_A.tolist() == [1, 2]


def test_generative_retrieval_prefers_recent_important_relevant():
  m = mem.empty_memory(1, 3, 2, 2, 2, PAD)
  tok = jnp.ones((1, 2), jnp.int32)
  one = jnp.ones((1,), jnp.int32)
  for r, (vec, imp) in enumerate([((1.0, 0.0), 1.0), ((0.0, 1.0), 7.0), ((0.6, 0.8), 7.0)]):
    m = mem.store(m, tok, one, tok, one, jnp.asarray([vec]), jnp.asarray([r]), r, jnp.asarray([imp]))
  entry, hit, _ = mem.retrieve_generative(m, jnp.asarray([0]), jnp.asarray([[0.0, 1.0]]), 3)
  assert bool(hit[0]) and int(entry[0]) == 2  # most recent, important, and relevant enough


def test_question_files(tmp_path):
  (tmp_path / "q.txt").write_text("first?\n\nsecond?\n")
  assert load_questions(tmp_path / "q.txt") == ["first?", "second?"]
  rows = [{"chosen": "\n\nHuman: Can I pick a lock?\n\nAssistant: No."}, {"question": "Is lying ok?"}]
  with gzip.open(tmp_path / "q.jsonl.gz", "wt") as f:
    f.write("\n".join(json.dumps(r) for r in rows))
  assert load_questions(tmp_path / "q.jsonl.gz") == ["Can I pick a lock?", "Is lying ok?"]
  (tmp_path / "empty.txt").write_text("\n\n")
  with pytest.raises(ValueError, match=r"empty\.txt: no questions"):
    load_questions(tmp_path / "empty.txt")
  (tmp_path / "bad.jsonl").write_text('{"question": "ok"}\n{not json\n')
  with pytest.raises(ValueError, match=r"bad\.jsonl:2: invalid JSON"):
    load_questions(tmp_path / "bad.jsonl")
  (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00bad")
  with pytest.raises(ValueError, match=r"binary\.txt: unreadable"):
    load_questions(tmp_path / "binary.txt")
  with pytest.raises(FileNotFoundError, match="missing.txt"):
    load_questions(tmp_path / "missing.txt")


def test_real_redteam_questions_load():
  from pathlib import Path

  path = Path(__file__).resolve().parents[2] / "shared" / "data" / "hh_rlhf_redteam_questions.txt"
  if not path.exists():
    pytest.skip("../shared/data is not beside this checkout")
  assert len(load_questions(path)) == 5022


def test_bad_society_config():
  with pytest.raises(ValueError, match="society.worlds: unknown world view 'utopia'"):
    SocietyConfig(worlds=(("utopia", 0),))
  with pytest.raises(ValueError, match=r"society.templates.draft: unknown slots \['name'\]"):
    Templates(draft="You are {name}")
  with pytest.raises(ValueError, match="society.grid_size"):
    SocietyConfig(grid_size=1)


def test_token_space_assembly_equals_rendered_text():
  """The round's prompts are exactly the templates' text (byte tokenizer), memory or not."""
  from sandbox_jax.protocol.prompts import PromptTables, segments, slot
  from sandbox_jax.protocol.templates import compact_templates, render

  t = compact_templates()
  tables = PromptTables.build(t, TOK, 9, add_bos=False)
  pad = lambda texts, w: pad_token_rows([TOK.encode(x) for x in texts], w, PAD)
  q, d, mq, ma = pad(["Is it ok?", "Why?"], 16), pad(["No.", "Because."], 16), pad(["old q", "x"], 8), pad(["old a", "y"], 8)
  ids = pad(["3", "7"], 4)
  segs = segments(tables, "feedback", {"rater_id": slot(*ids), "author_id": slot(*ids), "query": slot(*q),
                                       "draft": slot(*d)}, {"prev_q": slot(*mq), "prev_a": slot(*ma)})
  tokens, valid = assemble(segs, 2, 160, PAD, jnp.asarray([True, False]))
  expected = [render(t.feedback, dict(rater_id="3", author_id="3", query="Is it ok?", draft="No."), t.memory,
                     dict(prev_q="old q", prev_a="old a")),
              render(t.feedback, dict(rater_id="7", author_id="7", query="Why?", draft="Because."))]
  assert _decode(tokens, valid) == expected
