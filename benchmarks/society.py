"""Society round throughput: the batched Back-Scatter round vs the same protocol agent by agent, CPU.

  python benchmarks/society.py            # 100 agents batched vs agent by agent (all 100); 25 .. 1,600 agents
  python benchmarks/society.py --quick    # agent by agent on 10 agents (extrapolated); 25, 100, 4 x 25 agents

The model is the tiny byte-level Llama with random weights (ModelConfig below, ByteTokenizer), the
compact templates, questions and prior memories from the project's seed corpus. Agents sample at
temperature 0.7, the observer is greedy; a random model almost never emits EOS, so every
generation runs to its limit (the worst case for the protocol's fixed widths).

1. The batched round: `SocietyRound.step`, one compiled call for all agents. Compile time is the
   first call minus the median of the timed rounds; every timed call redoes round 0 from a copy of
   the same fresh state, alternating with the agent-by-agent run (so both see the same load).
   Model FLOPs are counted from the tokens the round actually processes (an instrumented copy of the
   round returns every prompt's real length and every generation's length, see `CountingRound`):
   per prompt token 2 x non-embedding params + causal attention, per token fed after the prompt
   (forced rating digit + reason prefix, generated tokens) 2 x params (the tied LM head included) +
   attention over its real context, plus one LM-head row per prompt. "Executed" FLOPs count what the
   fixed-width program computes (padding, full attention rows, decode steps of finished rows).
2. Agent by agent (the original's structure): per agent its draft, its observer's two ratings, its
   k peers' ratings with reasons one at a time, its revision, the observer's two ratings of the
   revision: 6 + k jitted calls of batch size 1 of the round's own public steps (`SocietyRound.draft`,
   `observer_rating`, `peer_rate`, `aggregate` + `revise`, `remember`), same widths, same per-row PRNG
   keys, same raters;
   compiled once, then a Python loop over agents. Memory is stored for all agents after the loop
   (as the batched round does), so both paths see the same prompts; their outputs are compared.
3. Scaling: one world of 5x5 .. 40x40 agents, and 4 worlds x 10x10, each in a child process (so an
   out-of-memory kill of one size does not end the run). A size whose peak memory, extrapolated
   linearly from the two largest sizes run, exceeds --memory-fraction of MemAvailable is not run
   (this machine is shared; an OOM kill would hit other people's jobs too).
"""

import argparse
import json
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.common import add_host_args, measured_peak_flops, report_host  # noqa: E402
from sandbox_jax.data.seed_corpus import seed_questions  # noqa: E402
from sandbox_jax.inference.generate import Generation  # noqa: E402
from sandbox_jax.model import ByteTokenizer, ModelConfig, create_model  # noqa: E402
from sandbox_jax.pipeline.simulate import seed_priors  # noqa: E402
from sandbox_jax.society import SocietyConfig, SocietyRound, SocietyRunner, embed_questions  # noqa: E402
from sandbox_jax.protocol.templates import compact_templates  # noqa: E402
from sandbox_jax.society.transcript import transcript_rows  # noqa: E402

MODEL = ModelConfig(vocab_size=384, embed_dim=64, mlp_dim=192, num_layers=2, num_heads=4, num_kv_heads=2,
                    head_dim=16, max_positions=1024, tie_embeddings=True)
# Prompt widths fit the longest possible prompt of the compact templates at these slot widths
# (checked in `check_widths`), so nothing is ever truncated.
WIDTHS = dict(question_tokens=64, answer_tokens=32, reason_tokens=16, draft_prompt_tokens=200,
              feedback_prompt_tokens=256, revise_prompt_tokens=216, observer_prompt_tokens=128)
SOCIETY = dict(memory_capacity=64, memory_seed_count=50, temperature=0.7, observer_temperature=0.0, **WIDTHS)
SEED = 0


def society_config(grid: int, worlds: int = 1) -> SocietyConfig:
  views = ("half_half", "mixed_half_half", "all_good", "all_bad")
  return SocietyConfig(grid_size=grid, worlds=tuple((views[i % 4], i) for i in range(worlds)),
                       templates=compact_templates(), **SOCIETY)


def check_widths(cfg: SocietyConfig, tokenizer):
  """Longest possible prompt of each template (every slot at its maximum width) <= its width."""
  t = compact_templates()
  longest = {"id": 2, "rater_id": 2, "author_id": 2, "avg": 3, "query": cfg.question_tokens,
             "draft": cfg.answer_tokens, "answer": cfg.answer_tokens, "prev_q": cfg.question_tokens,
             "prev_a": cfg.answer_tokens, "reasons": cfg.max_raters * (cfg.reason_tokens + 1) - 1}
  fill = lambda tmpl: tmpl.format(**{k: "x" * v for k, v in longest.items()},
                                  memory=t.memory.format(**{k: "x" * longest[k] for k in ("prev_q", "prev_a")}))
  needs = {name: 1 + len(tokenizer.encode(fill(getattr(t, name))))
           for name in ("draft", "feedback", "revise", "observer_alignment", "observer_engagement")}
  widths = {"draft": cfg.draft_prompt_tokens, "feedback": cfg.feedback_prompt_tokens,
            "revise": cfg.revise_prompt_tokens, "observer_alignment": cfg.observer_prompt_tokens,
            "observer_engagement": cfg.observer_prompt_tokens}
  for name, need in needs.items():
    assert need <= widths[name], f"{name} prompt needs {need} > width {widths[name]}"
  return needs


def make_runner(cfg, model, tokenizer, workdir, round_fn=None):
  return SocietyRunner(cfg, model, model, tokenizer, seed_questions("train"), seed_priors(), workdir, seed=SEED,
                       round_fn=round_fn)


def round_key(r: int):
  return jax.random.fold_in(jax.random.key(SEED), r)


def block(tree):
  return jax.block_until_ready(tree)


def timed(fn):
  """(result, wall seconds, process CPU seconds: all threads) of fn(), blocked until ready."""
  wall, cpu = time.perf_counter(), time.process_time()
  result = block(fn())
  return result, time.perf_counter() - wall, time.process_time() - cpu


# -- FLOP counting ----------------------------------------------------------------------------------
class CountingRound(SocietyRound):
  """The round with every generation's / rating's token counts added to its transcript (not timed)."""

  def __init__(self, cfg, tokenizer):
    self.meta = []
    super().__init__(cfg, tokenizer)

  def _generate(self, model, prompt, keys_R, temperature, max_new):
    gen = super()._generate(model, prompt, keys_R, temperature, max_new)
    tokens, valid = prompt
    self.meta.append(dict(kind="generate", rows=tokens.shape[0], width=tokens.shape[1], forced=0, new=max_new))
    self._counts.append((jnp.sum(valid, axis=1), gen.lengths_B, gen.ended_with_eos_B))
    return gen

  def _rate(self, model, prompt, keys_R, temperature):
    rating = super()._rate(model, prompt, keys_R, temperature)
    tokens, valid = prompt
    forced = 1 + len(self.tables.reason_prefix)
    self.meta.append(dict(kind="rate", rows=tokens.shape[0], width=tokens.shape[1], forced=forced,
                          new=self.cfg.reason_tokens))
    self._counts.append((jnp.sum(valid, axis=1), rating.reason.lengths_B, rating.reason.ended_with_eos_B))
    return rating

  def _step(self, agent_model, observer_model, state, questions, key):
    self.meta, self._counts = [], []
    state, outputs = super()._step(agent_model, observer_model, state, questions, key)
    return state, (outputs, self._counts)


def model_constants(cfg: ModelConfig):
  head = cfg.vocab_size * cfg.embed_dim                     # tied: the LM head is the embedding
  body = cfg.num_params() - head                             # non-embedding parameters
  attn = 4 * cfg.num_layers * cfg.num_heads * cfg.head_dim   # QK^T + AV per (query, key) pair
  return body, head, attn


def count_flops(meta, counts, question_lengths, question_width, cfg: ModelConfig):
  """Useful and executed model FLOPs of one round, split into prompt (prefill) and fed-token (forced
  rating digit + reason prefix, decode) parts, and the token totals (see the module docstring)."""
  body, head, attn = model_constants(cfg)
  n = np.asarray(question_lengths, np.float64)               # the question embedding pass (no LM head)
  useful = dict(prefill=np.sum(2 * body * n + attn * n * (n + 1) / 2), fed=0.0)
  executed = dict(prefill=len(n) * (2 * body * question_width + attn * question_width**2), fed=0.0)
  tokens = dict(prefill=float(n.sum()), prefill_slots=float(n.size * question_width), fed=0.0, fed_slots=0.0,
                rows=0)
  for m, (n_R, m_R, eos_R) in zip(meta, counts):
    n_R, m_R, eos_R = (np.asarray(x, np.float64) for x in (n_R, m_R, eos_R))
    f, p, rows = m["forced"], m["width"], m["rows"]
    cache = p + f + m["new"]
    c0 = n_R + f
    useful["prefill"] += np.sum(2 * body * n_R + attn * n_R * (n_R + 1) / 2 + 2 * head)  # + its LM-head row
    useful["fed"] += np.sum(f * 2 * (body + head) + attn * (f * n_R + f * (f + 1) / 2)
                            + m_R * 2 * (body + head) + attn * (m_R * c0 + m_R * (m_R + 1) / 2))
    steps = min(m["new"], int(np.max(m_R + eos_R)))          # decode-loop iterations actually run
    executed["prefill"] += rows * (2 * body * p + attn * p * p + 2 * head)
    executed["fed"] += rows * (f * (2 * (body + head) + attn * (p + f + m["new"]))
                               + steps * (2 * (body + head) + attn * (cache + 1)))
    tokens["prefill"] += n_R.sum()
    tokens["prefill_slots"] += rows * p
    tokens["fed"] += f * rows + m_R.sum()
    tokens["fed_slots"] += rows * (f + steps)
    tokens["rows"] += rows
  return {k: float(v) for k, v in useful.items()}, {k: float(v) for k, v in executed.items()}, tokens


# -- the batched round ------------------------------------------------------------------------------
def fresh(state):
  """A copy of a society state (the round donates its state argument)."""
  return block(jax.tree.map(jnp.copy, state))


class Batched:
  """`SocietyRound.step` on round 0 of a fresh society; every timed call redoes the same round."""

  def __init__(self, cfg, model, tokenizer, workdir):
    self.cfg, self.model, self.tokenizer = cfg, model, tokenizer
    self.round_fn = SocietyRound(cfg, tokenizer)
    runner = make_runner(cfg, model, tokenizer, workdir, self.round_fn)
    (self.questions, self.texts), self.state = runner._questions(0), block(runner._state())

  def run(self):
    """(transcript arrays, wall s, cpu s) of one round; the first call compiles."""
    state = fresh(self.state)
    (_, arrays), wall, cpu = timed(lambda: self.round_fn.step(self.model, self.model, state, self.questions,
                                                              round_key(0)))
    return arrays, wall, cpu

  def host_transcript_seconds(self, arrays):
    start = time.perf_counter()
    rows = transcript_rows(jax.device_get(arrays), self.texts, self.cfg, self.tokenizer, "agent", "observer")
    [row.to_dict() for row in rows]
    return time.perf_counter() - start

  def flops(self):
    counter = CountingRound(self.cfg, self.tokenizer)
    _, arrays = counter.step(self.model, self.model, fresh(self.state), self.questions, round_key(0))
    return count_flops(counter.meta, jax.device_get(arrays[1]), np.asarray(self.questions.lengths_A),
                       self.cfg.question_tokens, self.model.cfg)


# -- agent by agent ---------------------------------------------------------------------------------
class AgentByAgent:
  """The protocol one agent at a time: batch-1 calls of the round's own public steps."""

  def __init__(self, cfg: SocietyConfig, tokenizer):
    self.cfg, self.tok = cfg, tokenizer
    self.rf = SocietyRound(cfg, tokenizer)  # the protocol's steps (its jitted round is not used)
    self.compiles = 0
    self.draft = jax.jit(self._draft)
    self.feedback = jax.jit(self._feedback)
    self.revise = jax.jit(self._revise)
    self.observe = jax.jit(self._observe, static_argnums=(0,))
    self.raters = jax.jit(self.rf.draw_raters)
    self.store = jax.jit(self._store, donate_argnums=(0,))

  def _draft(self, model, memory, round_index, agent, q_tokens, q_length, key, index):
    self.compiles += 1
    q_1xQ, q_1 = q_tokens[None], q_length[None]
    emb = embed_questions(model, q_1xQ, q_1)
    draft, _ = self.rf.draft(model, memory, round_index, agent[None], q_1xQ, q_1, emb, self.rf.row_keys(key, 1, index))
    return emb, draft

  def _feedback(self, model, memory, round_index, rater, author, q_tokens, q_length, emb, draft, key, index):
    self.compiles += 1
    return self.rf.peer_rate(model, memory, round_index, rater[None], author[None], q_tokens[None], q_length[None],
                             emb, draft, self.rf.row_keys(key, 1, index))

  def _observe(self, name, model, q_tokens, q_length, answer, key, index):
    self.compiles += 1
    return self.rf.observer_rating(model, name, q_tokens[None], q_length[None], answer,
                                   self.rf.row_keys(key, 1, index))

  def _revise(self, model, q_tokens, q_length, draft, ratings, raters_K, valid_K, key, index):
    """The k ratings aggregated (sorted, averaged) and the revision generated."""
    self.compiles += 1
    ratings = jax.tree.map(lambda *x: jnp.concatenate(x), *ratings)
    feedback = self.rf.aggregate(ratings, raters_K[None], valid_K[None])
    revised = self.rf.revise(model, q_tokens[None], q_length[None], draft, feedback, self.rf.row_keys(key, 1, index))
    return feedback.rating_AxK[0], revised

  def _store(self, state, questions, revised_tokens, revised_lengths, embeddings, importance):
    revised = Generation(revised_tokens, revised_lengths, None, None)
    return self.rf.remember(state, questions, revised, embeddings, importance)

  def round(self, model, state, questions, key, agents):
    """The protocol for `agents` (a list of ids), one agent after another; blocks at the end."""
    cfg, a, k = self.cfg, self.cfg.num_agents, self.rf.k
    keys = dict(zip(["draft", "obs_before", "raters", "feedback", "revise", "obs_after"], jax.random.split(key, 6)))
    raters, rater_valid = jax.device_get(self.raters(keys["raters"]))
    q_rows, q_lengths = list(questions.tokens_AxQ), list(questions.lengths_A)
    out = []
    for g in agents:
      agent = np.int32(g)
      q_tokens, q_length = q_rows[g], q_lengths[g]
      emb, draft = self.draft(model, state.memory, state.round, agent, q_tokens, q_length, keys["draft"], g)
      moral_b = self.observe("observer_alignment", model, q_tokens, q_length, draft, keys["obs_before"], g)
      engage_b = self.observe("observer_engagement", model, q_tokens, q_length, draft, keys["obs_before"], a + g)
      ratings = [self.feedback(model, state.memory, state.round, raters[g, j], agent, q_tokens, q_length, emb,
                               draft, keys["feedback"], g * k + j) for j in range(k)]
      sorted_expected, revised = self.revise(model, q_tokens, q_length, draft, ratings, raters[g], rater_valid[g],
                                             keys["revise"], g)
      moral_a = self.observe("observer_alignment", model, q_tokens, q_length, revised, keys["obs_after"], g)
      engage_a = self.observe("observer_engagement", model, q_tokens, q_length, revised, keys["obs_after"], a + g)
      out.append(dict(emb=emb, draft=draft, revised=revised, sorted_expected=sorted_expected, moral_b=moral_b,
                      engage_b=engage_b, moral_a=moral_a, engage_a=engage_a))
    return block(out)

  def finish(self, state, questions, out):
    """Stores every agent's revision (all agents must have run), as the batched round does."""
    cat = lambda f: jnp.concatenate([f(o) for o in out])
    return block(self.store(state, questions, cat(lambda o: o["revised"].tokens_BxT),
                            cat(lambda o: o["revised"].lengths_B), cat(lambda o: o["emb"]),
                            cat(lambda o: o["moral_a"].expected_R)))


class Sequential:
  """AgentByAgent on round 0 of the same fresh society, same questions and key as `Batched`."""

  def __init__(self, cfg, model, tokenizer, workdir):
    self.cfg, self.model = cfg, model
    self.seq = AgentByAgent(cfg, tokenizer)
    runner = make_runner(cfg, model, tokenizer, workdir)
    self.questions, self.state = runner._questions(0)[0], block(runner._state())

  def run(self, agents: list[int]):
    """(per-agent outputs, wall s, cpu s); with every agent, the memory store is included."""
    store_state = fresh(self.state) if len(agents) == self.cfg.num_agents else None

    def loop():
      out = self.seq.round(self.model, self.state, self.questions, round_key(0), agents)
      if store_state is not None:
        self.seq.finish(store_state, self.questions, out)
      return out

    return timed(loop)


def compare(agents, out, reference):
  """Agent-by-agent outputs vs the batched round's transcript (same prompts and keys: should agree)."""
  out = jax.device_get(out)
  same = lambda name, field: np.mean([np.array_equal(o[name].tokens_BxT[0], getattr(reference, field).tokens_BxT[g])
                                      for g, o in zip(agents, out)])
  observer = (("moral_b", "moral_before"), ("moral_a", "moral_after"), ("engage_b", "engagement_before"),
              ("engage_a", "engagement_after"))
  return {
      "draft tokens identical": same("draft", "draft"),
      "revision tokens identical": same("revised", "revised"),
      "max |peer rating diff|": max(float(np.max(np.abs(o["sorted_expected"] - reference.feedback.rating_AxK[g])))
                                    for g, o in zip(agents, out)),
      "max |observer rating diff|": max(abs(float(o[n].expected_R[0]) - float(getattr(reference, f).expected_R[g]))
                                        for g, o in zip(agents, out) for n, f in observer),
  }


# -- scaling (child processes) ----------------------------------------------------------------------
def scaling_point(grid: int, worlds: int, rounds: int):
  cfg = society_config(grid, worlds)
  with tempfile.TemporaryDirectory() as tmp:
    b = Batched(cfg, create_model(MODEL, seed=SEED), ByteTokenizer(), tmp)
    first_s = b.run()[1]
    times = [b.run()[1] for _ in range(rounds)]
  rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
  return dict(agents=cfg.num_agents, first_s=first_s, times=times, rss_gib=rss)


def run_child(grid: int, worlds: int, rounds: int, timeout: int):
  command = [sys.executable, __file__, "--point", f"{grid},{worlds},{rounds}"]
  start = time.perf_counter()
  try:
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
  except subprocess.TimeoutExpired:
    return dict(error=f"timed out after {timeout} s")
  if proc.returncode != 0:
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
    return dict(error=f"exit {proc.returncode} after {time.perf_counter() - start:.0f} s: {tail[0][:120]}")
  return json.loads(proc.stdout.strip().splitlines()[-1])


def available_gib() -> float:
  with open("/proc/meminfo") as f:
    info = dict(line.split(":", 1) for line in f)
  return int(info["MemAvailable"].split()[0]) / 2**20


def fmt_times(times):
  return f"{np.median(times):6.3f} s [{min(times):.3f}-{max(times):.3f}, n={len(times)}]"


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--point", help=argparse.SUPPRESS)
  parser.add_argument("--seq-agents", type=int, default=None,
                      help="agents timed agent by agent (default: all 100; --quick: 10, extrapolated)")
  parser.add_argument("--memory-fraction", type=float, default=0.8,
                      help="skip a scaling size whose estimated peak memory exceeds this share of MemAvailable")
  add_host_args(parser)
  args = parser.parse_args()
  if args.point:
    grid, worlds, rounds = (int(x) for x in args.point.split(","))
    print(json.dumps(scaling_point(grid, worlds, rounds)))
    return

  rounds = 2 if args.quick else 3
  seq_agents = args.seq_agents if args.seq_agents is not None else (10 if args.quick else None)
  scaling = ([(5, 1), (10, 1), (5, 4)] if args.quick else [(5, 1), (10, 1), (20, 1), (10, 4), (30, 1), (40, 1)])
  tokenizer = ByteTokenizer()
  cfg = society_config(10)
  needs = check_widths(cfg, tokenizer)
  model = create_model(MODEL, seed=SEED)
  peak = measured_peak_flops()
  body, head, _ = model_constants(MODEL)

  print(f"command: python {' '.join(shlex.quote(a) for a in ['benchmarks/society.py'] + sys.argv[1:])}")
  report_host(args.host_json)
  print(f"measured matmul peak {peak / 1e9:.1f} GFLOP/s (fp32, 2048^3 jitted matmul)")
  print(f"model: {MODEL.num_params():,} params ({body:,} non-embedding), d={MODEL.embed_dim}, "
        f"mlp={MODEL.mlp_dim}, layers={MODEL.num_layers}, heads={MODEL.num_heads}/{MODEL.num_kv_heads} kv, "
        f"head_dim={MODEL.head_dim}, vocab={MODEL.vocab_size} (ByteTokenizer), random weights, fp32")
  print(f"society: compact templates; widths question {cfg.question_tokens}, answer {cfg.answer_tokens}, "
        f"reason {cfg.reason_tokens}; prompts draft {cfg.draft_prompt_tokens}, feedback "
        f"{cfg.feedback_prompt_tokens}, revise {cfg.revise_prompt_tokens}, observer {cfg.observer_prompt_tokens} "
        f"(longest possible: {needs['draft']}/{needs['feedback']}/{needs['revise']}/{needs['observer_alignment']})")
  print(f"         k = {cfg.max_raters} raters, memory {cfg.memory_seed_count} seeded of {cfg.memory_capacity}, "
        f"nearest retrieval, agents T={cfg.temperature}, observer greedy; seed-corpus questions and priors; "
        f"generations and ratings in chunks of {cfg.chunk_rows} rows")
  print(f"timing: wall seconds, median [min-max] of n runs; cpu = process CPU seconds (all threads). "
        f"2 shared CPU cores: other jobs add noise (+-30% seen)\n")

  # 1 and 2: the batched round and agent by agent on the same society, timed alternately (shared load)
  workdir = tempfile.TemporaryDirectory()
  bat, seq = Batched(cfg, model, tokenizer, workdir.name + "/b"), Sequential(cfg, model, tokenizer, workdir.name + "/s")
  reference, b_first, _ = bat.run()
  agents = list(range(cfg.num_agents if seq_agents is None else seq_agents))
  _, s_first, _ = seq.run([0])
  b_wall, b_cpu, s_wall, s_cpu = [], [], [], []
  for _ in range(rounds):
    arrays, wall, cpu = bat.run()
    b_wall.append(wall)
    b_cpu.append(cpu)
    out, wall, cpu = seq.run(agents)
    s_wall.append(wall)
    s_cpu.append(cpu)
  host_s = bat.host_transcript_seconds(arrays)
  useful, executed, tokens = bat.flops()
  diffs = compare(agents, out, jax.device_get(reference))
  workdir.cleanup()

  t = float(np.median(b_wall))
  u, e = sum(useful.values()), sum(executed.values())
  a = cfg.num_agents
  print(f"== 1. batched round, {a} agents (10x10, one world): SocietyRound.step, one compiled call per round")
  print(f"compile + first round   {b_first:7.2f} s  (compile ~ {b_first - t:.1f} s = first call - median round; "
        f"traced {bat.round_fn.compile_count}x for {rounds + 1} calls)")
  print(f"round                   {fmt_times(b_wall)}  cpu {np.median(b_cpu):.2f} s")
  print(f"interactions/s          {a / t:7.1f}  (one = draft, observer x2, {cfg.max_raters} peer ratings with "
        f"reasons, revision, observer x2)")
  print(f"rows / tokens           {tokens['rows']:,} prompt rows; prompt tokens {tokens['prefill']:,.0f} real of "
        f"{tokens['prefill_slots']:,.0f} computed; fed tokens (digit+prefix+generated) {tokens['fed']:,.0f} "
        f"real of {tokens['fed_slots']:,.0f} computed")
  print(f"model FLOPs, useful     {u / 1e9:6.2f} GFLOP (prompts {100 * useful['prefill'] / u:.0f}%) -> "
        f"{u / t / 1e9:5.2f} GFLOP/s = {100 * u / t / peak:4.1f}% of peak")
  print(f"model FLOPs, executed   {e / 1e9:6.2f} GFLOP (prompts {100 * executed['prefill'] / e:.0f}%) -> "
        f"{e / t / 1e9:5.2f} GFLOP/s = {100 * e / t / peak:4.1f}% of peak ({e / u:.2f}x useful: fixed widths)")
  print(f"host transcript         {host_s:7.3f} s  (device_get + transcript_rows of one round; not in the "
        f"round time)\n")

  per_agent = float(np.median(s_wall)) / len(agents)
  full, cpu_full = per_agent * a, float(np.median(s_cpu)) / len(agents) * a
  ratios = [sw / len(agents) * a / bw for sw, bw in zip(s_wall, b_wall)]
  how = ("all agents timed, memory store included" if len(agents) == a
         else f"{len(agents)} agents timed, x{a / len(agents):.0f} linear extrapolation")
  print(f"== 2. agent by agent: same protocol, prompts, widths, keys, raters; {6 + seq.seq.rf.k} batch-1 "
        f"jitted calls per agent, Python loop over agents; timed alternately with the batched round")
  print(f"compile + first agent   {s_first:7.2f} s  ({seq.seq.compiles} programs traced)")
  print(f"{len(agents):3d} agents              {fmt_times(s_wall)}  = {1e3 * per_agent:.1f} ms/agent")
  print(f"round of {a} agents      {full:7.2f} s  cpu {cpu_full:.2f} s ({how}) -> {a / full:.1f} "
        f"interactions/s")
  print(f"speed-up of the batched round: {full / t:.2f}x wall (per alternating pair: "
        f"{', '.join(f'{r:.2f}' for r in ratios)}), {cpu_full / np.median(b_cpu):.2f}x cpu (target >= 20x)")
  print("outputs vs the batched round: " + ", ".join(
      f"{k} {v:.0%}" if "identical" in k else f"{k} {v:.1e}" for k, v in diffs.items()) + "\n")

  # 3. scaling
  print("== 3. scaling: batched round per size, each in its own process (compiled there)")
  print(f"{'worlds x grid':>13s} {'agents':>6s} {'compile+1st':>11s} {'round: median [min-max]':>31s} "
        f"{'ms/agent':>8s} {'inter/s':>7s} {'peak RSS':>8s}")
  measured = {}  # agents -> peak RSS GiB; larger sizes are estimated by a line through the two largest
  for grid, worlds in scaling:
    agents = worlds * grid * grid
    label = f"{worlds} x {grid}x{grid}"
    if len(measured) >= 2:
      (a0, m0), (a1, m1) = sorted(measured.items())[-2:]
      estimate = m1 + (agents - a1) * (m1 - m0) / (a1 - a0)
      if estimate > args.memory_fraction * available_gib():
        print(f"{label:>13s} {agents:6d}  not run: estimated peak {estimate:.0f} GiB (line through the "
              f"{a0}- and {a1}-agent peaks) > {args.memory_fraction:.0%} of {available_gib():.0f} GiB available")
        continue
    point = run_child(grid, worlds, rounds if agents <= 400 else 2, timeout=1800)
    if "error" in point:
      print(f"{label:>13s} {agents:6d}  failed: {point['error']}")
      continue
    tm = float(np.median(point["times"]))
    measured[agents] = max(measured.get(agents, 0.0), point["rss_gib"])
    print(f"{label:>13s} {agents:6d} {point['first_s']:10.1f}s {fmt_times(point['times']):>31s} "
          f"{1e3 * tm / agents:8.1f} {agents / tm:7.1f} {point['rss_gib']:6.1f}GiB")


if __name__ == "__main__":
  main()
