"""model: the Flax NNX decoder LM (Llama family and GPT-2), KV cache, HF and GGUF interop, tokenizers."""

from sandbox_jax.model.config import ModelConfig, model_config_from_dict
from sandbox_jax.model.factory import abstract_model, create_model, model_shardings
from sandbox_jax.model.hf_checkpoint import export_hf_checkpoint, load_hf_checkpoint
from sandbox_jax.model.hf_config import model_config_from_hf
from sandbox_jax.model.kv_cache import KVCache
from sandbox_jax.model.loading import load_checkpoint, load_gguf_checkpoint
from sandbox_jax.model.tokenizer import ByteTokenizer, HFTokenizer, Tokenizer, load_tokenizer
from sandbox_jax.model.transformer import ModelOutput, Transformer

__all__ = [
    "ByteTokenizer", "HFTokenizer", "KVCache", "ModelConfig", "ModelOutput", "Tokenizer", "Transformer",
    "abstract_model", "create_model", "export_hf_checkpoint", "load_checkpoint", "load_gguf_checkpoint",
    "load_hf_checkpoint", "load_tokenizer", "model_config_from_dict", "model_config_from_hf", "model_shardings",
]
