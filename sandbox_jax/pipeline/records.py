"""Stage `records`: transcript → imitation / self-critic / realignment records → rated groups.

Writes `records.jsonl` (the kept records, one per line, with provenance, group by group) and
`sandbox_v1.json` (the released group schema, readable by the official code). The config section
`records` (`data.records.RecordsConfig`; None: the project's defaults) picks the rules, the
deduplication, the order and the subsampling; `data.records.OFFICIAL_RECORDS` is the official
`collect_data.py` setting. Regrouping `records.jsonl` with `read_groups` (what the train stage
does) gives the groups of `sandbox_v1.json`, under any records config.
"""

from collections import Counter
from pathlib import Path

from sandbox_jax.data import group_records, read_records, read_transcripts, write_records, write_sandbox_v1
from sandbox_jax.data.records import RecordsConfig, select_groups
from sandbox_jax.data.schemas import Group


def build_records(transcript: str | Path, out_dir: str | Path, config=None) -> dict:
  cfg = RecordsConfig.from_dict(config)
  out_dir = Path(out_dir)
  rows = read_transcripts(transcript)
  selection = select_groups(rows, cfg)
  if not selection.records:
    raise ValueError(f"{transcript}: the transcript produced no training records")
  write_records(out_dir / "records.jsonl", selection.records)
  write_sandbox_v1(out_dir / "sandbox_v1.json", selection.groups)
  return {"rows": len(rows), "records": len(selection.records), "groups": len(selection.groups),
          "by_type": dict(Counter(r.type for r in selection.records)), "selection": selection.counts}


def read_groups(records: str | Path, config=None) -> list[Group]:
  """The groups of a `records.jsonl` written by `build_records` under `config`: its records are in
  group order and deduplicated as the config says, so regrouping keeps a repeated response only where
  the config's deduplication did (`records.dedupe = 'none'` keeps every one)."""
  return group_records(read_records(records), dedupe=RecordsConfig.from_dict(config).dedupe != "none")
