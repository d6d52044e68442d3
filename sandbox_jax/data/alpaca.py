"""The Alpaca short prompt template: records' prompts as raw text (DESIGN §7).

Records are grouped by this text and `sandbox_v1.json` holds it. Training renders the groups in it
when chat formats are off (`society.chat = 'none'`, or a tokenizer without a chat template, as the
tiny byte model's); with a chat model the train stage renders each record's instruction and input
as a chat user message instead (`protocol.chat.instruction_prompt`, `pipeline.records.read_groups`).

The official SANDBOX data (`sandbox_v1.json`) uses the *short* Alpaca templates, without the
"Below is an instruction ..." preamble:

    ### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:      (input non-empty)
    ### Instruction:\n{instruction}\n\n### Response:                             (no input)

The response text follows the final colon directly; batching appends the response in token space.
"""

INSTRUCTION_HEADER = "### Instruction:\n"
INPUT_HEADER = "### Input:\n"
RESPONSE_HEADER = "### Response:"


def alpaca_prompt(instruction: str, input: str | None = None) -> str:  # noqa: A002 (Alpaca's name)
  """Renders the short Alpaca prompt; the Input block appears only when `input` is non-empty."""
  prompt = f"{INSTRUCTION_HEADER}{instruction}\n\n"
  if input:
    prompt += f"{INPUT_HEADER}{input}\n\n"
  return prompt + RESPONSE_HEADER
