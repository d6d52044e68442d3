"""What batching needs from a tokenizer (structural typing: any object with these members fits).

`sandbox_jax.model`'s byte and Hugging Face tokenizers satisfy it; tests use a toy one. `encode`
must not add special tokens itself: batching adds `bos_id` (when not None and the tokenizer's
`adds_bos` — whether it prepends BOS to a text, as transformers' `tokenizer(text)` does — is not
False; objects without `adds_bos` get one) and `eos_id`.
"""

from typing import Protocol, runtime_checkable


@runtime_checkable
class Tokenizer(Protocol):
  eos_id: int
  pad_id: int
  bos_id: int | None

  def encode(self, text: str) -> list[int]: ...
