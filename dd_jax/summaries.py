"""Metric writers: clu's default writer (TensorBoard event files + absl log lines).

clu writes TensorBoard summaries through TensorFlow, which is imported here only, on
first use, with its log chatter and its view of accelerators turned off (JAX owns them).
"""
from __future__ import annotations

import os

import jax


def create_writer(workdir: str):
  """clu's default writers for `workdir` (log lines, and TensorBoard event files on the
  first process of a multi-host run), except that the hyperparameters go to TensorBoard
  only: as a log line they are a thousand characters nobody reads."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
  hide_accelerators_from_tensorflow()
  from clu import metric_writers  # pylint: disable=g-import-not-at-top

  class Writer(metric_writers.MultiWriter):
    def __init__(self, log, tensorboard):
      super().__init__([log, *tensorboard])
      self.tensorboard = tensorboard

    def write_hparams(self, hparams):
      for w in self.tensorboard:
        w.write_hparams(hparams)

  tensorboard = ([] if jax.process_index() > 0 else
                 [metric_writers.SummaryWriter(os.fspath(workdir))])
  return Writer(metric_writers.LoggingWriter(), tensorboard)


def hide_accelerators_from_tensorflow() -> None:
  """TensorFlow would otherwise reserve GPU/TPU memory JAX needs."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], "GPU")
  try:
    tf.config.set_visible_devices([], "TPU")
  except (RuntimeError, ValueError):
    pass
