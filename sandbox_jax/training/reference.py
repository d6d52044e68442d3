"""DPO's frozen reference: every response's log-probability under the initial model, computed once.

A fresh DPO run scores every response of every group with the model it starts from (one batched,
jitted forward pass per `rows` responses, truncated exactly as training truncates them) and writes
the table to `<workdir>/dpo_reference.json` (atomically): `{"data": <fingerprint>, "model":
<model name>, "logp": {<group key>: [log p of each response]}}`. A group's key hashes its query
and responses, so the table does not depend on the stage split or the data order. A resumed run
reads the file back — the reference must stay the *initial* model, which a resumed run no longer
holds — and checks it was made for the same groups, max_len, `append_eos`, row format and tokenizer
(the data fingerprint), so a resumed run with another of these is refused.

Per batch, `batch_reference` gathers the table's entries for the responses the iterator is about
to put in its next batch. It replays the iterator's documented response sampling (group i of epoch e
keeps `select_responses(scores, R, default_rng([seed, e, i]))`), so it must be called just
before `next(iterator)`.
"""

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import jax
import numpy as np
from jax.sharding import Mesh

from sandbox_jax.data import (PLAIN_ROWS, Group, GroupBatchIterator, RowFormat, atomic_write_text,
                              make_group_batch, select_responses)
from sandbox_jax.parallel.sharding import batch_sharding, replicated
from sandbox_jax.training.step import response_logprobs

REFERENCE_FILE = "dpo_reference.json"


def group_key(group: Group) -> str:
  text = "\x00".join((group.query,) + tuple(group.responses))
  return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def data_fingerprint(groups: Sequence[Group], tokenizer, max_len: int, append_eos: bool = True,
                     rows: RowFormat = PLAIN_ROWS) -> str:
  keys = sorted({group_key(g) for g in groups})
  name = f"{getattr(tokenizer, 'name', type(tokenizer).__name__)}:{getattr(tokenizer, 'vocab_size', '')}"
  fields = [keys, max_len, name] if append_eos else [keys, max_len, name, "no eos"]  # old tables stay valid
  if rows != PLAIN_ROWS:
    fields.append(["rows", rows.add_bos, rows.end_id])
  return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:32]


def _put(x: np.ndarray, mesh: Mesh | None, rules):
  if mesh is None:
    return x
  return jax.make_array_from_callback(x.shape, batch_sharding(mesh, rules, x.shape), lambda index: x[index])


def compute_reference(model, tokenizer, groups: Sequence[Group], max_len: int, *, mesh: Mesh | None = None,
                      rows: int = 32, append_eos: bool = True,
                      row_format: RowFormat = PLAIN_ROWS) -> dict[str, list[float]]:
  """{group key: [summed log-prob of each response]} under `model`."""
  unique = list({group_key(g): g for g in groups}.items())
  singles = [(key, i, Group(g.query, (r,), (s,), ("",))) for key, g in unique
             for i, (r, s) in enumerate(zip(g.responses, g.scores))]
  out_sharding = None if mesh is None else replicated(mesh)
  score = jax.jit(lambda m, b: response_logprobs(m, b)[0][:, 0], out_shardings=out_sharding)
  table = {key: [0.0] * len(g.responses) for key, g in unique}
  for start in range(0, len(singles), rows):
    chunk = singles[start:start + rows]
    batch = make_group_batch([g for _, _, g in chunk], tokenizer, max_len=max_len, groups_per_batch=rows,
                             max_responses=1, append_eos=append_eos, rows=row_format)
    logp = np.asarray(jax.device_get(score(model, jax.tree.map(lambda x: _put(x, mesh, model.rules), batch))))
    for (key, i, _), value in zip(chunk, logp):
      table[key][i] = float(value)
  return table


def load_or_compute_reference(path: Path, fresh: bool, model, tokenizer, groups: Sequence[Group], max_len: int,
                              *, mesh: Mesh | None = None, rows: int = 32,
                              append_eos: bool = True,
                              row_format: RowFormat = PLAIN_ROWS) -> dict[str, list[float]]:
  """A fresh run computes and writes the table; a resumed run reads and checks it."""
  fingerprint = data_fingerprint(groups, tokenizer, max_len, append_eos, row_format)
  if not fresh:
    if not path.is_file():
      raise FileNotFoundError(f"{path}: the DPO reference log-probs of this run are missing; they can only be "
                              "computed with the initial model, so restart the run in a new workdir")
    saved = json.loads(path.read_text())
    if saved.get("data") != fingerprint:
      raise ValueError(f"{path}: DPO reference made for other groups, max_len, train.append_eos, row format or "
                       "tokenizer than this run's; restart the run in a new workdir")
    return saved["logp"]
  table = compute_reference(model, tokenizer, groups, max_len, mesh=mesh, rows=rows, append_eos=append_eos,
                            row_format=row_format)
  if jax.process_index() == 0:
    atomic_write_text(path, json.dumps({"data": fingerprint, "model": model.cfg.name, "logp": table}))
  return table


def batch_reference(table: dict[str, list[float]], iterator: GroupBatchIterator) -> np.ndarray:
  """G×R reference log-probs of the batch `next(iterator)` will produce (0 in padding)."""
  G, R = iterator.groups_per_batch, iterator.max_responses
  out = np.zeros((G, R), np.float32)
  epoch = iterator.epoch
  for g, i in enumerate(iterator.batch_group_ids(epoch, iterator.position)):
    group = iterator.groups[i]
    logp = table[group_key(group)]
    kept = select_responses(group.scores, R, np.random.default_rng([iterator.seed, epoch, i]))
    out[g, :len(kept)] = [logp[j] for j in kept]
  return out
