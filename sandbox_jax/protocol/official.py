"""The official preset: the society as agi-templar/Stable-Alignment runs it (DESIGN.md §6.5).

A run config applies it with `config.society.update(OFFICIAL_SOCIETY)` (the real-scale configs do
with their `official` argument). It sets the official protocol (integer peer ratings averaged and
printed as Python prints the float, stripped texts) and templates, and the original's generation
settings: temperature 1.0 and up to 256 new tokens for every agent and observer call.

Keys of the preset's other parts are set by their owners next to these (global interaction, memory
capacity, records rules): see docs/protocol.md.
"""

OFFICIAL_SOCIETY = dict(
    protocol="official",
    templates="official",
    temperature=1.0,            # call_gpt: temperature=1.0 for every call
    observer_temperature=1.0,
    answer_tokens=256,          # call_gpt: max_tokens=256
    reason_tokens=256,
)
