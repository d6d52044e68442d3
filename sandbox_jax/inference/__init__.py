"""inference: prefill + decode inside jit, sampling, and log-likelihood scoring for many rows
(ratings over "1".."7" are built on these in `sandbox_jax.protocol.rating`)."""

from sandbox_jax.inference.buckets import Buckets
from sandbox_jax.inference.engine import GenerationResult, InferenceEngine, ScoreResult
from sandbox_jax.inference.generate import Generation, decode, generate_tokens
from sandbox_jax.inference.sampling import SamplingConfig, sample_tokens
from sandbox_jax.inference.score import Scores, score_tokens, token_logprobs

__all__ = ["Buckets", "Generation", "GenerationResult", "InferenceEngine", "SamplingConfig", "ScoreResult",
           "Scores", "decode", "generate_tokens", "sample_tokens", "score_tokens", "token_logprobs"]
