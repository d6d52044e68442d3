"""The official preset: the society as agi-templar/Stable-Alignment runs it (DESIGN.md §6.5).

`apply_official(config)` turns a run config into official mode (the real-scale configs and
`configs/tiny.py` do with their `official` argument); docs/protocol.md lists every key it sets:

* `society` ← `OFFICIAL_SOCIETY`: the official protocol (integer peer ratings averaged and printed as
  Python prints the float, stripped texts) and templates; the original's generation settings
  (temperature 1.0 and up to 256 new tokens for every agent and observer call); its rater draw
  (`tgt_agent_count` 4, the global local share of all neighbours); its memory (50 seed memories,
  top-1 retrieval under cosine distance 0.3, a revision stored only for a new question);
* `society.memory_capacity` ← seeds + rounds, so no memory is evicted (the original's memory is
  unbounded; the simulate stage checks it again after command-line overrides);
* `records` ← `data.records.OFFICIAL_RECORDS` (collect_data.py's rules, deduplication, order and
  subsampling);
* `train.append_eos` ← False (the original trainer appends no eos).
"""

from sandbox_jax.data.records import OFFICIAL_RECORDS

OFFICIAL_SOCIETY = dict(
    protocol="official",
    templates="official",
    temperature=1.0,            # call_gpt: temperature=1.0 for every call
    observer_temperature=1.0,
    answer_tokens=256,          # call_gpt: max_tokens=256
    reason_tokens=256,
    max_raters=4,               # simulation.py: back_scatter(..., tgt_agent_count=4)
    global_local_share="neighbours",   # World.back_scatter: int((1 - dropout_rate) * neighbors.size) local
    memory_seed_count=50,       # sample_init_data(n_total=50)
    retrieval="nearest",        # the most similar question, used if its cosine distance < 0.3
    retrieval_threshold=0.3,
    store_only_new=True,        # save_int_memory: only a question not in memory yet
)


def apply_official(config) -> None:
  """Sets the official preset on a run config (an ml_collections ConfigDict with `society` and `train`
  sections) in place; `society.rounds` must be final (it sizes the memory)."""
  from sandbox_jax.society.memory import capacity_without_eviction   # society imports protocol

  config.society.update(OFFICIAL_SOCIETY)
  config.society.memory_capacity = capacity_without_eviction(int(config.society.memory_seed_count),
                                                             int(config.society.rounds))
  config.records = dict(OFFICIAL_RECORDS)
  config.train.append_eos = False
