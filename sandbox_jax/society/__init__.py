"""society: the SANDBOX world, agent memory, token-space prompts, the Back-Scatter round, the runner."""

from sandbox_jax.society.config import SocietyConfig
from sandbox_jax.society.round import Questions, SocietyRound, SocietyState, embed_questions
from sandbox_jax.society.runner import SocietyRunner, round_questions
from sandbox_jax.society.setup import initial_state
from sandbox_jax.protocol.templates import Templates

__all__ = ["Questions", "SocietyConfig", "SocietyRound", "SocietyRunner", "SocietyState", "Templates",
           "embed_questions", "initial_state", "round_questions"]
