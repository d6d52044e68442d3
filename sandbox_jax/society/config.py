"""SocietyConfig: the static shape and protocol settings of a society run."""

import dataclasses

from sandbox_jax.protocol.chat import CHAT_MODES, CHAT_PRIOR
from sandbox_jax.protocol.templates import Templates
from sandbox_jax.society.world import GLOBAL_LOCAL_SHARES, WORLD_VIEWS

RETRIEVALS = ("nearest", "generative")
PROTOCOLS = ("default", "official")


@dataclasses.dataclass(frozen=True)
class SocietyConfig:
  grid_size: int = 10                                   # N: N×N agents per world
  worlds: tuple[tuple[str, int], ...] = (("all_good", 0),)  # (world view, seed) per batched world
  max_raters: int = 4                                   # k = min(max_raters, #neighbours)
  global_dropout: float | None = None                   # None: local raters only
  # Global interaction's local share (world.rater_plan): 'k' max(1, int((1 - dropout) * k)) of
  # k = min(max_raters, #neighbours) raters; 'neighbours' (official) max(1, int((1 - dropout) *
  # #neighbours)) local of max_raters raters in all.
  global_local_share: str = "k"
  question_tokens: int = 64                             # question width (longer ones are cut)
  answer_tokens: int = 48                               # max new tokens of a draft or revision
  reason_tokens: int = 24                               # max new tokens of a reason (0: no reasons)
  draft_prompt_tokens: int = 320
  feedback_prompt_tokens: int = 640
  revise_prompt_tokens: int = 640
  observer_prompt_tokens: int = 512
  memory_capacity: int = 64
  memory_seed_count: int = 50                           # prior Q/A pairs of the agent's view (official: 50)
  retrieval: str = "nearest"                            # reference top-1 | 'generative' (Generative Agents)
  retrieval_threshold: float = 0.3                      # cosine distance (reference)
  recency_decay: float = 0.99
  store_only_new: bool = True                           # official: store only if the question is new
  temperature: float = 0.7                              # agents' sampling temperature
  observer_temperature: float = 0.0                     # observer reasons (0: greedy)
  # Rows per generation / rating chunk: each chunk's prefill and decode loop run one after another
  # (0: all rows at once). 8-32 suit a CPU (a chunk's KV cache stays in the processor's caches;
  # benchmarks/RESULTS.md); an accelerator wants as many rows as its memory holds (real-scale configs: 200).
  chunk_rows: int = 16
  templates: Templates = Templates()
  # 'official': as agi-templar/Stable-Alignment runs a round (DESIGN.md §6.5) — peers' ratings are the
  # chosen digits (sorted and averaged as integers; the average printed as Python prints the float),
  # drafts, revisions and reasons are stripped of surrounding whitespace. 'default': the expected
  # ratings, averaged and shown to one decimal; generations as generated. The official preset
  # (`protocol.official.apply_official`) also sets the templates, generation settings, rater draw and
  # memory (docs/protocol.md §6).
  protocol: str = "default"
  # Chat formats (DESIGN.md §6.5a): 'auto' prompts in the tokenizer's own chat template when it has one
  # (each prompt a user message; rating prompts open the assistant turn; no BOS of ours; generation
  # stops at the end-of-turn token); 'none' prompts with the raw templates. The byte tokenizer has no
  # chat template, so 'auto' changes nothing for the tiny models. The system prompts: social agents
  # (draft, feedback, revise) get the official `CHAT_PRIOR`, observers none (None: no system message).
  chat: str = "auto"
  chat_agent_system: str | None = CHAT_PRIOR
  chat_observer_system: str | None = None

  def __post_init__(self):
    if self.grid_size < 2:
      raise ValueError(f"config key society.grid_size must be >= 2, got {self.grid_size}")
    for view, _ in self.worlds:
      if view not in WORLD_VIEWS:
        raise ValueError(f"config key society.worlds: unknown world view {view!r}; known: {WORLD_VIEWS}")
    if not self.worlds:
      raise ValueError("config key society.worlds: at least one world")
    if self.protocol not in PROTOCOLS:
      raise ValueError(f"config key society.protocol: {self.protocol!r} not in {PROTOCOLS}")
    if self.chat not in CHAT_MODES:
      raise ValueError(f"config key society.chat: {self.chat!r} not in {list(CHAT_MODES)}")
    for key in ("chat_agent_system", "chat_observer_system"):
      if getattr(self, key) is not None and not isinstance(getattr(self, key), str):
        raise ValueError(f"config key society.{key}: a string or None, got {getattr(self, key)!r}")
    if self.retrieval not in RETRIEVALS:
      raise ValueError(f"config key society.retrieval: {self.retrieval!r} not in {RETRIEVALS}")
    if isinstance(self.chunk_rows, bool) or not isinstance(self.chunk_rows, int) or self.chunk_rows < 0:
      raise ValueError(f"config key society.chunk_rows must be an integer >= 0, got {self.chunk_rows!r}")
    if self.global_dropout is not None and not 0.0 <= self.global_dropout <= 1.0:
      raise ValueError(f"config key society.global_dropout must be in [0, 1], got {self.global_dropout}")
    if self.global_local_share not in GLOBAL_LOCAL_SHARES:
      raise ValueError(f"config key society.global_local_share: {self.global_local_share!r} not in "
                       f"{GLOBAL_LOCAL_SHARES}")

  @property
  def agents_per_world(self) -> int:
    return self.grid_size * self.grid_size

  @property
  def num_agents(self) -> int:
    return self.agents_per_world * len(self.worlds)
