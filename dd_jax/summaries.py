"""Metric writers: clu's default writer (TensorBoard event files + absl log lines).

clu writes TensorBoard summaries through TensorFlow, which is imported here only, on
first use, with its log chatter and its view of accelerators turned off (JAX owns them).
"""
from __future__ import annotations

import os

import jax


def create_writer(workdir: str):
  """`clu.metric_writers.create_default_writer` for `workdir`; non-zero processes of a
  multi-host run only log."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
  hide_accelerators_from_tensorflow()
  from clu import metric_writers  # pylint: disable=g-import-not-at-top
  return metric_writers.create_default_writer(
      workdir, just_logging=jax.process_index() > 0, asynchronous=False)


def hide_accelerators_from_tensorflow() -> None:
  """TensorFlow would otherwise reserve GPU/TPU memory JAX needs."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], "GPU")
  try:
    tf.config.set_visible_devices([], "TPU")
  except (RuntimeError, ValueError):
    pass
