"""Generation: parity with transformers greedy, independence of batch/padding/mesh, bucketing."""

import dataclasses

import jax
import numpy as np
import pytest

from sandbox_jax.inference import Buckets, InferenceEngine
from sandbox_jax.model import ByteTokenizer, ModelConfig, create_model, load_hf_checkpoint
from sandbox_jax.parallel import make_mesh


@dataclasses.dataclass
class IdTokenizer:
  """Token ids in, token ids out: for checkpoints whose tokenizer we do not need."""

  name: str = "ids"
  vocab_size: int = 320
  eos_id: int = 2
  pad_id: int = 0
  bos_id: int | None = None

  def encode(self, text):
    return [int(t) for t in text.split()]

  def decode(self, ids):
    return " ".join(str(int(i)) for i in ids)


def _prompts(seed=0, lengths=(3, 17, 9, 30, 1, 12)):
  rng = np.random.default_rng(seed)
  return [rng.integers(3, 320, n).tolist() for n in lengths]


@pytest.mark.parametrize("kind", ["llama_gen", "gpt2_gen"])
def test_greedy_equals_transformers_generate(kind, hf_checkpoint_factory):
  import torch
  import transformers as tf

  directory = hf_checkpoint_factory(kind)
  prompts = _prompts()
  engine = InferenceEngine(load_hf_checkpoint(directory), IdTokenizer())
  ours = engine.generate(prompts, 16)

  reference = tf.AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
  width = max(map(len, prompts))
  ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
  mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
  with torch.no_grad():
    out = reference.generate(ids, attention_mask=mask, max_new_tokens=16, do_sample=False,
                             pad_token_id=0, eos_token_id=2).numpy()[:, width:]
  for row, result in zip(out, ours):
    expected = row.tolist()
    if 2 in expected:
      expected = expected[:expected.index(2)]
    assert result.tokens == expected
  assert sum(len(r.tokens) for r in ours) >= 16 * 4  # most rows really generated 16 tokens


@pytest.fixture(scope="module")
def tiny():
  return create_model(ModelConfig(), seed=3), ByteTokenizer()


@pytest.fixture(scope="module")
def engine(tiny):
  """One default engine on one device for the module: its compiled programs are shared by the tests
  (an engine compiles per instance; a fresh one is made only where its compiles are counted)."""
  return InferenceEngine(*tiny)


PROMPTS = ["Is it okay to lie to a friend?", "hi", "How do I bake bread at home without yeast?", "?"]


@pytest.fixture(scope="module")
def unsharded(engine):
  """The one-device generations and scores every mesh is compared with (computed once)."""
  return (engine.generate(PROMPTS, 12, temperature=[0.0, 1.0, 0.0, 0.5], seed=1),
          engine.score(PROMPTS, [" yes"] * 4))


def test_results_independent_of_batch_composition_and_padding(tiny, engine):
  model, tok = tiny
  together = engine.generate(PROMPTS, 20, temperature=[0.0, 0.8, 0.0, 1.2], seed=7)
  for i, prompt in enumerate(PROMPTS):
    temp = [0.0, 0.8, 0.0, 1.2][i]
    alone = engine.generate([prompt], 20, temperature=temp, seed=7, row_seeds=[i])[0]
    assert alone.tokens == together[i].tokens
    np.testing.assert_allclose(alone.logprobs, together[i].logprobs, atol=1e-5)
  wide = InferenceEngine(model, tok, buckets=Buckets(lengths=(128,)))
  padded = wide.generate(PROMPTS, 20, temperature=[0.0, 0.8, 0.0, 1.2], seed=7)
  assert [r.tokens for r in padded] == [r.tokens for r in together]


@pytest.mark.parametrize("axes", [{"data": 8}, {"data": 2, "fsdp": 4}, {"fsdp": 2, "tensor": 4}])
def test_results_independent_of_mesh(axes, tiny, unsharded):
  model, tok = tiny
  expected, expected_scores = unsharded
  mesh = make_mesh(axes)
  sharded_model = create_model(model.cfg, seed=3, mesh=mesh)
  engine = InferenceEngine(sharded_model, tok, mesh=mesh)
  got = engine.generate(PROMPTS, 12, temperature=[0.0, 1.0, 0.0, 0.5], seed=1)
  assert [r.tokens for r in got] == [r.tokens for r in expected]
  scores = engine.score(PROMPTS, [" yes"] * 4)
  np.testing.assert_allclose([s.logprob for s in scores], [s.logprob for s in expected_scores], atol=1e-4)


def test_eos_stops_a_row(tiny, engine):
  model, tok = tiny
  free = engine.generate(["abc"], 10)[0]
  stopper = dataclasses.replace(IdTokenizer(), eos_id=free.tokens[3], pad_id=tok.pad_id, bos_id=tok.bos_id)
  stopped = InferenceEngine(model, stopper).generate([tok.encode("abc")], 10)[0]
  assert stopped.ended_with_eos and stopped.tokens == free.tokens[:free.tokens.index(free.tokens[3])]


def test_top_k_one_is_greedy_and_top_p_restricts(tiny, engine):
  model, tok = tiny
  greedy = engine.generate(PROMPTS, 10)
  top1 = InferenceEngine(model, tok, sampling={"top_k": 1}).generate(PROMPTS, 10, temperature=1.5, seed=4)
  assert [r.tokens for r in top1] == [r.tokens for r in greedy]
  tiny_nucleus = InferenceEngine(model, tok, sampling={"top_p": 1e-6}).generate(PROMPTS, 10, temperature=1.0)
  assert [r.tokens for r in tiny_nucleus] == [r.tokens for r in greedy]


def test_bucketed_shapes_compile_a_handful_of_times(tiny):
  model, tok = tiny
  engine = InferenceEngine(model, tok)
  rng = np.random.default_rng(0)
  for i in range(20):
    n = int(rng.integers(1, 9))
    prompts = ["x" * int(rng.integers(1, 14)) for _ in range(n)]
    engine.generate(prompts, int(rng.integers(4, 16)), temperature=float(rng.uniform(0, 1)), seed=i)
  # batch buckets 1, 2, 4, 8 x one length bucket x new-token buckets 8, 16: at most 8 programs.
  assert engine.compile_count <= 8


def test_bad_input_is_rejected(tiny):
  model, tok = tiny
  engine = InferenceEngine(model, tok, add_bos=False)
  with pytest.raises(ValueError, match="prompt 1 is empty"):
    engine.generate(["ok", ""], 4)
  with pytest.raises(ValueError, match="prompt 0 has 511 tokens.*context of 512"):
    InferenceEngine(model, tok).generate(["x" * 510], 4)
  for bad in (0, -3, 2.5):
    with pytest.raises(ValueError, match="max_new_tokens must be a positive integer"):
      engine.generate(["ok"], bad)
  with pytest.raises(ValueError, match=r"unknown sampling settings \['beam_width'\]"):
    InferenceEngine(model, tok, sampling={"beam_width": 4})
  with pytest.raises(ValueError, match="temperature must be finite and >= 0"):
    engine.generate(["ok"], 4, temperature=-1.0)
  with pytest.raises(ValueError, match="continuation 0 is empty"):
    engine.score(["ok"], [""])


def test_row_chunks_equal_one_pass(tiny):
  """`chunk_rows` (with a ragged last chunk) changes memory and speed, not generations or ratings."""
  import jax.numpy as jnp

  from sandbox_jax.inference.generate import generate_tokens
  from sandbox_jax.protocol.rating import rate

  model, tok = tiny
  rng = np.random.default_rng(0)
  lengths = rng.integers(1, 24, 7)
  tokens = np.zeros((7, 24), np.int32)
  for i, n in enumerate(lengths):
    tokens[i, 24 - n:] = rng.integers(3, 250, n)
  valid = tokens != 0
  keys = jax.random.split(jax.random.key(0), 7)
  temps = jnp.asarray([0.0, 0.8] * 3 + [0.0])
  gen = lambda rows: jax.jit(lambda: generate_tokens(model, tokens, valid, keys, temps, max_new_tokens=6,
                                                     eos_id=tok.eos_id, pad_id=tok.pad_id, chunk_rows=rows))()
  one, chunked = gen(0), gen(3)
  np.testing.assert_array_equal(chunked.tokens_BxT, one.tokens_BxT)
  np.testing.assert_allclose(chunked.logprobs_BxT, one.logprobs_BxT, atol=1e-5)
  np.testing.assert_array_equal(chunked.lengths_B, one.lengths_B)
  digits = jnp.asarray([ord(c) for c in "1234567"])
  rating = lambda rows: jax.jit(lambda: rate(model, tokens, valid, digits, jnp.asarray([32, 35]), keys, temps,
                                             reason_tokens=4, eos_id=tok.eos_id, pad_id=tok.pad_id,
                                             chunk_rows=rows))()
  one, chunked = rating(0), rating(3)
  np.testing.assert_allclose(chunked.distribution_RxS, one.distribution_RxS, atol=1e-6)
  np.testing.assert_array_equal(chunked.argmax_R, one.argmax_R)
  np.testing.assert_array_equal(chunked.reason.tokens_BxT, one.reason.tokens_BxT)
  np.testing.assert_array_equal(chunked.reason.lengths_B, one.reason.lengths_B)
