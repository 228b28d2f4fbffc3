"""A step that went wrong changes nothing: the rollback shared by every method's step.

A step whose loss, gradients or updated values are not finite keeps the old state
(leaf by leaf inside the compiled step), advances only the step counter, the rng and the
update scale (every later update is scaled by `nonfinite_lr_factor` once more); the loop
counts such steps and stops with a clear error when they keep coming.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from dd_jax.distill.state import DistillState, after_step


def all_finite(tree) -> jax.Array:
  return jnp.all(jnp.array([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def keep_if(ok: jax.Array, new: DistillState, old: DistillState) -> DistillState:
  """`new` where ok, else `old` (a rolled-back step), leaf by leaf inside the jit."""
  return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)


def finish_step(state: DistillState, images, img_opt, rng, losses, norms,
                nonfinite_lr_factor: float):
  """The end of a matching step (DC/DM/IDC): the new images kept only when every loss and
  image is finite (else rolled back, the update scale lowered), step and rng advanced;
  (state, metrics)."""
  finite = jnp.all(jnp.isfinite(losses)) & all_finite(images)
  kept = keep_if(finite, state.replace(images=images, img_opt=img_opt), state)
  kept = kept.replace(step=state.step + 1, rng=rng,
                      update_scale=after_step(state, finite, nonfinite_lr_factor))
  return kept, {"loss": jnp.mean(losses), "finite": finite,
                "grad_norm_images": jnp.mean(norms), "update_scale": kept.update_scale}
