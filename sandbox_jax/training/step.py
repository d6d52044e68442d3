"""The jitted train step: one call = one optimizer update over a whole global batch.

  batch (A micro-batches × G/A groups × R responses × T tokens)
    → scan over micro-batches: forward (G/A·R) rows, per-response log-prob sums, the configured
      loss, its gradient — weighted by the micro-batch's count of valid groups (DPO: of pairs)
    → gradients and metrics summed, divided by the total count
    → clip + AdamW update, scaled by the step's learning rate (an input: see optimizer.py)

Every loss is a mean over a count (valid groups, or DPO pairs), so weighting each micro-batch's
mean by its count and dividing by the total gives exactly the loss of the whole batch: the result
does not depend on how the batch is split (accum_steps) or sharded (the G axis is sharded over the
mesh's batch axes; the jitted program computes global sums, never per-shard means).

The state is donated: the step updates parameters and moments in place.
"""

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from sandbox_jax.data import GroupBatch
from sandbox_jax.training import losses
from sandbox_jax.training.chunked_logprobs import chunked_sequence_logprobs
from sandbox_jax.training.config import TrainConfig
from sandbox_jax.training.state import TrainState

# Metrics that are counts (summed over micro-batches); every other metric is a mean weighted by
# the loss's count.
_SUMMED = ("num_groups", "num_pairs", "tokens")


def response_logprobs(model, batch: GroupBatch, logits_chunk: int = 0) -> tuple[jax.Array, jax.Array]:
  """(logp_sum_GxR, num_tokens_GxR): each response's summed log-probability and token count.

  `logits_chunk` > 0 makes the logits that many positions at a time (`chunked_logprobs`).
  """
  g, r, t = batch.tokens_GxRxT.shape
  rows = lambda x_GxRxT: x_GxRxT.reshape(g * r, t)
  tokens_BxT, targets_BxT, mask_BxT = (rows(batch.tokens_GxRxT), rows(batch.targets_GxRxT),
                                       rows(batch.loss_mask_GxRxT))
  out = model(tokens_BxT, valid_BxL=rows(batch.input_mask_GxRxT), compute_logits=not logits_chunk)
  if logits_chunk:
    logp_B, count_B = chunked_sequence_logprobs(model, out.hidden_BxLxD, targets_BxT, mask_BxT, logits_chunk)
  else:
    logp_B, count_B = losses.sequence_logprobs(out.logits_BxLxV, targets_BxT, mask_BxT)
  return logp_B.reshape(g, r), count_B.reshape(g, r)


def batch_loss(cfg: TrainConfig, model, batch: GroupBatch, ref_logp_GxR=None):
  """(loss, metrics, weight): the configured loss on one (micro-)batch and its count."""
  logp_GxR, count_GxR = response_logprobs(model, batch, cfg.logits_chunk)
  rated = (batch.scores_GxR, batch.response_mask_GxR, batch.group_mask_G)
  if cfg.loss == "stable_alignment":
    loss, metrics = losses.stable_alignment_loss(
        logp_GxR, count_GxR, *rated, margin=cfg.margin, ratio=cfg.ratio, scale=cfg.scale,
        aggregation=cfg.aggregation, per_pair_hinge=cfg.per_pair_hinge)
  elif cfg.loss == "sft":
    loss, metrics = losses.sft_best_loss(logp_GxR, count_GxR, *rated)
  elif cfg.loss == "rrhf":
    loss, metrics = losses.rrhf_loss(logp_GxR, count_GxR, *rated, rrhf_weight=cfg.rrhf_weight)
  else:
    loss, metrics = losses.dpo_loss(logp_GxR, ref_logp_GxR, *rated, beta=cfg.dpo_beta)
  weight = metrics["num_pairs" if cfg.loss == "dpo" else "num_groups"].astype(jnp.float32)
  metrics = dict(metrics, tokens=count_GxR.sum())
  return loss, metrics, weight


def split_microbatches(tree, accum_steps: int):
  """Leading axis G → (A, G/A): micro-batch a holds groups [a·G/A, (a+1)·G/A). NumPy or jax."""
  return jax.tree.map(lambda x: x.reshape((accum_steps, x.shape[0] // accum_steps) + x.shape[1:]), tree)


def make_loss_and_grads(cfg: TrainConfig, graphdef, rest, param_shardings=None):
  """f(params, batch_A, ref_A) -> (loss, metrics, grads) over A micro-batches (leading axis).

  `param_shardings` (a State of shardings, or None) pins the gradient accumulator to the
  parameters' shardings.
  """

  def weighted(params, micro, ref):
    loss, metrics, weight = batch_loss(cfg, nnx.merge(graphdef, params, rest), micro, ref)
    return loss * weight, (metrics, weight)

  grad_fn = jax.value_and_grad(weighted, has_aux=True)

  def loss_and_grads(params, batch_A, ref_A):
    def one(micro, ref):
      (value, (metrics, weight)), grads = grad_fn(params, micro, ref)
      sums = {k: (v if k in _SUMMED else v * weight).astype(jnp.float32) for k, v in metrics.items()}
      return value, weight, sums, grads

    num_micro = jax.tree.leaves(batch_A)[0].shape[0]
    if num_micro == 1:
      total, weights, sums, grad_sum = one(*jax.tree.map(lambda x: x[0], (batch_A, ref_A)))
    else:
      def accumulate(carry, xs):
        return jax.tree.map(jnp.add, carry, one(*xs)), None

      shapes = jax.eval_shape(one, *jax.tree.map(lambda x: x[0], (batch_A, ref_A)))
      zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
      if param_shardings is not None:
        zeros = zeros[:3] + (jax.lax.with_sharding_constraint(zeros[3], param_shardings),)
      (total, weights, sums, grad_sum), _ = jax.lax.scan(accumulate, zeros, (batch_A, ref_A))
    denom = jnp.maximum(weights, 1.0)
    grads = jax.tree.map(lambda g: g / denom, grad_sum)
    metrics = {k: v if k in _SUMMED else v / denom for k, v in sums.items()}
    return total / denom, metrics, grads

  return loss_and_grads


def make_train_step(cfg: TrainConfig, graphdef, rest, optimizer: optax.GradientTransformation,
                    shardings: TrainState | None = None):
  """step(state, batch_A, ref_A, lr) -> (state, metrics); jitted, donating the state.

  `batch_A` is a GroupBatch whose arrays have a leading micro-batch axis (`split_microbatches`);
  `ref_A` holds the DPO reference log-probs (A×G/A×R) or is None; `lr` is this step's learning
  rate (a float32 scalar; `learning_rate_schedule`). `optimizer` is `make_optimizer(cfg)`.
  """
  param_shardings = None if shardings is None else shardings.params
  loss_and_grads = make_loss_and_grads(cfg, graphdef, rest, param_shardings)

  def step(state: TrainState, batch_A: GroupBatch, ref_A, lr):
    loss, metrics, grads = loss_and_grads(state.params, batch_A, ref_A)
    direction, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, jax.tree.map(lambda d: -lr * d, direction))
    metrics = dict(metrics, loss=loss, grad_norm=optax.tree.norm(grads))
    return TrainState(params, opt_state, state.step + 1), metrics

  return jax.jit(step, donate_argnums=(0,), out_shardings=(shardings, None))
