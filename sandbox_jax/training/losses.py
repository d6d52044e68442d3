"""Stable Alignment (DESIGN §8) and its baselines, on per-response aggregates.

Every loss takes per-response sums — `logp_sum_GxR` (summed log-probability of the response tokens)
and `num_tokens_GxR` (how many) — for G groups of up to R responses, plus `scores_GxR`,
`response_mask_GxR` and `group_mask_G`. The model enters only through `sequence_logprobs`, so the
losses are model-independent, cheap, and testable against NumPy.

Masking: a response takes part iff `response_mask & group_mask & (num_tokens > 0)`; a group iff
`group_mask` and it has a valid response. Padding never reaches a value or a gradient: every
division and every `-inf` fill uses the double-`where` pattern (the unsafe branch is computed on a
safe operand), so padded rows with `num_tokens = 0` give exactly zero gradient and never NaN.
All functions are `jax.jit`-able (no Python branching on values) and return `(loss, metrics)`.
"""

import jax
import jax.numpy as jnp

from sandbox_jax.data.schemas import DEFAULT_SCALE

Metrics = dict[str, jax.Array]


def sequence_logprobs(logits_BxTxV: jax.Array, targets_BxT: jax.Array,
                      mask_BxT: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(Σ_t mask·log p(target_t | logits_t), Σ_t mask), in fp32 whatever the logits dtype.

  Position t's logits score `targets_BxT[:, t]` (the batching convention: targets are the tokens
  shifted left by one and `mask` marks response tokens).
  """
  logits_BxTxV = logits_BxTxV.astype(jnp.float32)
  lse_BxT = jax.nn.logsumexp(logits_BxTxV, axis=-1)
  target_logit_BxT = jnp.take_along_axis(logits_BxTxV, targets_BxT[..., None], axis=-1)[..., 0]
  mask_BxT = mask_BxT.astype(jnp.float32)
  logp_BxT = jnp.where(mask_BxT > 0, target_logit_BxT - lse_BxT, 0.0)
  return (logp_BxT * mask_BxT).sum(-1), mask_BxT.sum(-1)


# ----------------------------------------------------------------------------------------------
# Shared pieces.

def _safe_div(num, den):
  """num / den where den > 0, else 0 — with zero (not NaN) gradients where den <= 0."""
  ok = den > 0
  return jnp.where(ok, num / jnp.where(ok, den, 1.0), 0.0)


def _valid_GxR(num_tokens_GxR, response_mask_GxR, group_mask_G):
  return response_mask_GxR.astype(bool) & group_mask_G.astype(bool)[:, None] & (num_tokens_GxR > 0)


def _token_mean_nll(logp_sum_GxR, num_tokens_GxR):
  """ℓ_i = −logp_sum / num_tokens (token-mean cross-entropy); 0 where num_tokens = 0."""
  return _safe_div(-logp_sum_GxR.astype(jnp.float32), num_tokens_GxR.astype(jnp.float32))


def _best(scores_GxR, valid_GxR):
  """(b_G, s_b_G, one_hot_GxR): the highest-scored valid response, first among ties."""
  masked_GxR = jnp.where(valid_GxR, scores_GxR.astype(jnp.float32), -jnp.inf)
  b_G = jnp.argmax(masked_GxR, axis=-1)
  one_hot_GxR = jax.nn.one_hot(b_G, scores_GxR.shape[-1], dtype=bool) & valid_GxR
  s_b_G = jnp.where(one_hot_GxR, scores_GxR, 0.0).sum(-1).astype(jnp.float32)
  return b_G, s_b_G, one_hot_GxR


def _pick(x_GxR, one_hot_GxR):
  return jnp.where(one_hot_GxR, x_GxR, 0.0).sum(-1)


def _group_mean(x_G, valid_G):
  return _safe_div(jnp.where(valid_G, x_G, 0.0).sum(), valid_G.sum().astype(jnp.float32))


# ----------------------------------------------------------------------------------------------
# Stable Alignment.

def stable_alignment_loss(logp_sum_GxR, num_tokens_GxR, scores_GxR, response_mask_GxR,
                          group_mask_G, *, margin: float = 1.0, ratio: float = 0.2,
                          scale: float = float(DEFAULT_SCALE), aggregation: str = "mean",
                          per_pair_hinge: bool = False) -> tuple[jax.Array, Metrics]:
  """Stable Alignment, DESIGN §8, mean over valid groups.

  Per group: ℓ_i = −logp_sum_i / num_tokens_i; b = argmax_i s_i (first among ties);
  N = {valid i : s_i < s_b}; d_i = ℓ_b − ℓ_i + (s_b − s_i) / scale · margin;
      L = ℓ_b + ratio · max(0, AGG_{i∈N} d_i)          AGG = mean | max (official `max_flow`)
      L = ℓ_b + ratio · Σ_{i∈N} max(0, d_i)            (per_pair_hinge=True)
  N empty (one response, or all tied with the best) → L = ℓ_b.

  Deliberate differences from the official `AlignmentTrainer.stable_alignment`:
  * the official code sorts the ratings but indexes the sorted ratings with the *unsorted*
    indices (`sorted_ratings[idx]` for `idx in indices[1:]`), so scores [3, 7, 5] get gaps
    (7 − 3, 7 − 5) computed as (7 − sorted[0], 7 − sorted[2]) = [0, 4] instead of [4, 2]; here
    the gap of response i is s_b − s_i;
  * the official negative set is every other response, ties with the best included (gap 0); here
    ties get no margin term (N holds strictly lower ratings only);
  * a batch holds many groups (the official one group per step); the loss is their mean.

  Metrics: `sft` (mean ℓ_b), `margin` (mean hinge before `ratio`, so loss = sft + ratio·margin),
  `hinge_active` (fraction of groups with a positive hinge), `score_gap` (mean s_b − s_i over all
  contrast pairs), `num_groups`.
  """
  if aggregation not in ("mean", "max"):
    raise ValueError(f"aggregation must be 'mean' or 'max', got {aggregation!r}")
  valid_GxR = _valid_GxR(num_tokens_GxR, response_mask_GxR, group_mask_G)
  valid_G = valid_GxR.any(-1)
  nll_GxR = _token_mean_nll(logp_sum_GxR, num_tokens_GxR)
  scores_GxR = scores_GxR.astype(jnp.float32)
  _, s_b_G, best_GxR = _best(scores_GxR, valid_GxR)
  nll_b_G = _pick(nll_GxR, best_GxR)
  neg_GxR = valid_GxR & (scores_GxR < s_b_G[:, None])
  num_neg_G = neg_GxR.sum(-1).astype(jnp.float32)
  gap_GxR = jnp.where(neg_GxR, s_b_G[:, None] - scores_GxR, 0.0)
  d_GxR = nll_b_G[:, None] - nll_GxR + gap_GxR / scale * margin
  if per_pair_hinge:
    hinge_G = jnp.where(neg_GxR, jnp.maximum(d_GxR, 0.0), 0.0).sum(-1)
  else:
    if aggregation == "mean":
      agg_G = _safe_div(jnp.where(neg_GxR, d_GxR, 0.0).sum(-1), num_neg_G)
    else:
      has_neg_G = num_neg_G > 0
      agg_G = jnp.where(has_neg_G, jnp.where(neg_GxR, d_GxR, -jnp.inf).max(-1), 0.0)
    hinge_G = jnp.maximum(agg_G, 0.0)
  hinge_G = jnp.where(valid_G, hinge_G, 0.0)
  loss_G = nll_b_G + ratio * hinge_G
  metrics = {
      "sft": _group_mean(nll_b_G, valid_G),
      "margin": _group_mean(hinge_G, valid_G),
      "hinge_active": _group_mean((hinge_G > 0).astype(jnp.float32), valid_G),
      "score_gap": _safe_div(gap_GxR.sum(), num_neg_G.sum()),
      "num_groups": valid_G.sum(),
  }
  return _group_mean(loss_G, valid_G), metrics


# ----------------------------------------------------------------------------------------------
# Baselines.

def sft_best_loss(logp_sum_GxR, num_tokens_GxR, scores_GxR, response_mask_GxR,
                  group_mask_G) -> tuple[jax.Array, Metrics]:
  """SFT on the best response of each group: mean over valid groups of ℓ_b."""
  valid_GxR = _valid_GxR(num_tokens_GxR, response_mask_GxR, group_mask_G)
  valid_G = valid_GxR.any(-1)
  _, _, best_GxR = _best(scores_GxR, valid_GxR)
  nll_b_G = _pick(_token_mean_nll(logp_sum_GxR, num_tokens_GxR), best_GxR)
  loss = _group_mean(nll_b_G, valid_G)
  return loss, {"sft": loss, "num_groups": valid_G.sum()}


def dpo_loss(logp_sum_GxR, ref_logp_sum_GxR, scores_GxR, response_mask_GxR, group_mask_G, *,
             beta: float = 0.1) -> tuple[jax.Array, Metrics]:
  """DPO (Rafailov et al. 2023), the best response of each group against each worse one.

  For every pair (b, i), s_i < s_b: z = β[(π_b − ref_b) − (π_i − ref_i)] with summed
  log-probabilities π (policy) and ref (frozen reference, precomputed); loss = mean over all
  pairs in the batch of −log σ(z) (0 when the batch has no pair). A response is valid iff
  `response_mask & group_mask`.

  Metrics: `accuracy` (fraction of pairs with z > 0), `reward_margin` (mean z / β),
  `chosen_reward` / `rejected_reward` (mean β·(π − ref) of the two sides), `num_pairs`.
  """
  valid_GxR = response_mask_GxR.astype(bool) & group_mask_G.astype(bool)[:, None]
  scores_GxR = scores_GxR.astype(jnp.float32)
  _, s_b_G, best_GxR = _best(scores_GxR, valid_GxR)
  reward_GxR = beta * (logp_sum_GxR.astype(jnp.float32) - ref_logp_sum_GxR.astype(jnp.float32))
  reward_b_G = _pick(reward_GxR, best_GxR)
  pair_GxR = valid_GxR & (scores_GxR < s_b_G[:, None])
  num_pairs = pair_GxR.sum().astype(jnp.float32)
  z_GxR = jnp.where(pair_GxR, reward_b_G[:, None] - reward_GxR, 0.0)
  pair_mean = lambda x_GxR: _safe_div(jnp.where(pair_GxR, x_GxR, 0.0).sum(), num_pairs)
  loss = pair_mean(-jax.nn.log_sigmoid(z_GxR))
  metrics = {
      "accuracy": pair_mean((z_GxR > 0).astype(jnp.float32)),
      "reward_margin": pair_mean(z_GxR / beta),
      "chosen_reward": pair_mean(jnp.broadcast_to(reward_b_G[:, None], z_GxR.shape)),
      "rejected_reward": pair_mean(reward_GxR),
      "num_pairs": num_pairs,
  }
  return loss, metrics


def rrhf_loss(logp_sum_GxR, num_tokens_GxR, scores_GxR, response_mask_GxR, group_mask_G, *,
              rrhf_weight: float = 1.0, length_penalty: float = 1.0) -> tuple[jax.Array, Metrics]:
  """RRHF (Yuan et al. 2023), per group, mean over valid groups.

  p_i = logp_sum_i / num_tokens_i^length_penalty (length-normalised log-probability);
      L = rrhf_weight · Σ_{s_i < s_j} max(0, p_i − p_j) + ℓ_b
  with ℓ_b the token-mean cross-entropy of the best response (first among ties). As in the
  official RRHF code the ranking term is a sum over the group's ordered pairs; its SFT term
  averages over the padded length (one example per step there), here over the response tokens.

  Metrics: `rank` (mean ranking term), `sft` (mean ℓ_b), `num_groups`.
  """
  valid_GxR = _valid_GxR(num_tokens_GxR, response_mask_GxR, group_mask_G)
  valid_G = valid_GxR.any(-1)
  scores_GxR = scores_GxR.astype(jnp.float32)
  n_GxR = num_tokens_GxR.astype(jnp.float32)
  ok_GxR = n_GxR > 0
  p_GxR = _safe_div(logp_sum_GxR.astype(jnp.float32),
                    jnp.where(ok_GxR, jnp.where(ok_GxR, n_GxR, 1.0) ** length_penalty, 0.0))
  # pair (i, j) with s_i < s_j: the worse response i must not be more likely than the better j.
  pair_GxRxR = (valid_GxR[:, :, None] & valid_GxR[:, None, :]
                & (scores_GxR[:, :, None] < scores_GxR[:, None, :]))
  rank_G = jnp.where(pair_GxRxR, jnp.maximum(p_GxR[:, :, None] - p_GxR[:, None, :], 0.0),
                     0.0).sum((-1, -2))
  _, _, best_GxR = _best(scores_GxR, valid_GxR)
  nll_b_G = _pick(_token_mean_nll(logp_sum_GxR, num_tokens_GxR), best_GxR)
  loss_G = rrhf_weight * rank_G + nll_b_G
  metrics = {"rank": _group_mean(rank_G, valid_G), "sft": _group_mean(nll_b_G, valid_G),
             "num_groups": valid_G.sum()}
  return _group_mean(loss_G, valid_G), metrics
