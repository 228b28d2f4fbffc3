"""Trajectory-matching distillation: state, step, segments, the run loop, export."""
