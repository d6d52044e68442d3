"""Running a row-wise batched computation over chunks of rows, one chunk after another.

Every generation and rating is row-independent (each row has its own prompt, PRNG key and
temperature), so `map_row_chunks` may split the rows into chunks and run them in sequence with
`lax.map` inside the same compiled program: row for row the same computation as one pass, while the
live activations and KV cache are those of one chunk. XLA does not promise bitwise equality across
batch shapes (DESIGN.md §13): on some processors (e.g. AVX-512) another chunk size changes the
numbers in the last float digits, and a sampled token where a near-tie flips. The same chunk size on
the same machine is bitwise reproducible. On a CPU this is much faster as well,
because a chunk's decode loop keeps its KV cache in the processor's caches instead of streaming the
whole population's cache from memory every step (benchmarks/RESULTS.md, society round).
"""

import jax
import jax.numpy as jnp


def map_row_chunks(fn, chunk_rows: int, *arrays_B):
  """fn(*arrays_B) computed `chunk_rows` rows at a time; fn returns a pytree of row-major arrays.

  `chunk_rows` <= 0, or no more rows than that, calls fn once on everything. Otherwise the B rows
  are padded (with copies of the last row, whose results are dropped) to n * chunk_rows and chunk
  j holds rows j, j + n, j + 2n, ... — strided, so that a row axis split over a device mesh in
  contiguous blocks stays split the same way inside every chunk.
  """
  b = arrays_B[0].shape[0]
  if chunk_rows <= 0 or b <= chunk_rows:
    return fn(*arrays_B)
  n = -(-b // chunk_rows)
  pad = n * chunk_rows - b

  def split(x):
    if pad:
      x = jnp.concatenate([x, jnp.broadcast_to(x[-1:], (pad, *x.shape[1:]))])
    return jnp.swapaxes(x.reshape(chunk_rows, n, *x.shape[1:]), 0, 1)

  def join(y):
    return jnp.swapaxes(y, 0, 1).reshape(n * chunk_rows, *y.shape[2:])[:b]

  return jax.tree.map(join, jax.lax.map(lambda chunk: fn(*chunk), tuple(split(x) for x in arrays_B)))
