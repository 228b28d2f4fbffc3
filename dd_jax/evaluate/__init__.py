"""Evaluation: the training protocol (protocol.py) and config-driven runs (run.py)."""
from dd_jax.evaluate.protocol import EvalResult, evaluate_synset

__all__ = ["EvalResult", "evaluate_synset"]
