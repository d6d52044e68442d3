"""data.

Pure Python/NumPy (no jax, no other sandbox_jax package): the interaction log's schema, transcript
rows → training records (imitation / self-critic / realignment) → rated groups, the official
`sandbox_v1.json` format, fixed-shape batches of rated groups with a resumable, shardable
iterator, the stage mix, and a tensorflow-datasets builder for transcript directories.

`SandboxTranscripts`, `row_from_example` and `split_of` (the TFDS builder, `tfds_builder`) are
imported lazily, so `import sandbox_jax.data` does not pay for importing tensorflow-datasets.
"""

from sandbox_jax.data.alpaca import alpaca_prompt
from sandbox_jax.data.batch_iterator import GroupBatchIterator
from sandbox_jax.data.batching import (DEFAULT_MAX_RESPONSES, PLAIN_ROWS, GroupBatch, RowFormat,
                                       encode_sequence, make_group_batch, select_responses, truncate)
from sandbox_jax.data.jsonl import atomic_write_text
from sandbox_jax.data.records import (CRITIC_SUFFIX, OFFICIAL_REVISION_SUFFIX, REVISION_START,
                                      REVISION_SUFFIX, group_records, read_records,
                                      read_transcripts, record_prompt, row_to_records,
                                      rows_to_records, write_records, write_transcripts)
from sandbox_jax.data.sandbox_v1 import (SentinelCounts, from_sandbox_v1, infer_record_type,
                                         load_sandbox_v1, read_sandbox_v1, to_sandbox_v1,
                                         write_sandbox_v1)
from sandbox_jax.data.schemas import (DEFAULT_SCALE, RECORD_TYPES, DataFormatError, Group,
                                      MemoryEntry, Provenance, Record, RecordType, TranscriptRow)
from sandbox_jax.data.stages import STAGES, mix_stages
from sandbox_jax.data.tokenizer import Tokenizer

_LAZY = {"SandboxTranscripts", "row_from_example", "split_of"}


def __getattr__(name):
  if name in _LAZY:
    from sandbox_jax.data import tfds_builder
    return getattr(tfds_builder, name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
