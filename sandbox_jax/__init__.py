"""sandbox_jax: SANDBOX society + Stable Alignment in JAX/Flax NNX.

Shape letters. A tensor's name ends in its shape, one letter per dimension joined by `x`
(`tokens_BxT`, `k_LxBxKxSxH`); `_B` alone is one value per row. The letters, package-wide:

  B  batch rows of a model call            L  sequence length (layers, in stacked KV caches: LxBxKxSxH)
  D  model (embedding) width               F  MLP hidden width
  V  vocabulary                            H  head dimension
  N  query heads                           K  KV heads (model); raters per draft (society, protocol)
  S  KV-cache slots (model); rating candidates "1".."7" (protocol: distribution_RxS)
  P  prompt length                         T  generated / target tokens
  R  rows of prompts, ratings or answers (society, protocol); responses per group (training, data)
  A  agents, over all worlds (world-major) C  memory capacity per agent
  Q  question (and memory-question) width  W  width of a token slot or an assembled prompt
  G  rated groups (training)               1  a dimension of size one
"""
