"""A minimal distillation method written against dd_jax's method interface
(docs/architecture.md walks through it; tests/distill/test_method_interface.py runs it).

Mean matching: each outer step draws `distill.batch_real` real images of every class
and moves each class's synthetic images toward that batch's mean by gradient descent on
the squared distance (SGD at `distill.lr_img`, momentum `distill.img_momentum`). Not a good method, a short one: the loop
gives it resumption, checkpoints, evaluation, export and the report for free.

To make it a method of the library: put the class in dd_jax/distill/methods/, and add
`"mean": MeanMatching` to `METHODS` in dd_jax/distill/methods/__init__.py. Then
`--config.distill.method=mean` runs it.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax

from dd_jax.distill import state as state_lib
from dd_jax.distill.guard import finish_step
from dd_jax.distill.methods import base
from dd_jax.errors import require


class MeanMatching(base.Method):
  name = "mean"
  description = "mean matching (an example)"

  def __init__(self, ctx: base.RunContext, param: base.Parameterization):
    super().__init__(ctx, param)
    d, p = ctx.config.distill, ctx.prepared
    self.by_class = [np.flatnonzero(p.y_train == c) for c in range(p.num_classes)]
    self.x_train = jnp.asarray(p.x_train)
    tx = state_lib.optimizers(d)[0]   # the state's image optimiser: SGD(lr_img, img_momentum)
    classes, ipc, batch = p.num_classes, d.ipc, d.batch_real

    def loss_fn(images, real):   # images [C * ipc, H, W, ch], real [C, batch, H, W, ch]
      syn = images.reshape((classes, ipc) + images.shape[1:])
      target = real.mean(axis=1, keepdims=True)   # [C, 1, H, W, ch]
      return jnp.mean(jnp.sum((syn - target) ** 2, axis=(2, 3, 4)))

    def step(state, x_train, idx):   # idx [C, batch] training indices
      key, rng = jax.random.split(state.rng)
      del key   # the batch is drawn on the host, from (seed, step)
      loss, grad = jax.value_and_grad(loss_fn)(state.images, x_train[idx])
      updates, img_opt = tx.update(grad, state.img_opt, state.images)
      images = optax.apply_updates(state.images, updates)
      # A non-finite step changes nothing but the counter, rng and update scale.
      return finish_step(state, images, img_opt, rng, loss[None],
                         optax.tree.norm(grad)[None], d.nonfinite_lr_factor)

    self.batch = batch
    self.step_fn = jax.jit(step)

  @staticmethod
  def validate(config) -> None:
    """Its own fields, with the field and the fix in the message."""
    require(config.distill.batch_real >= 1, "distill.batch_real",
            f"is {config.distill.batch_real}", "draw at least one real image per class")

  def step(self, state, step: int):
    rng = np.random.default_rng([self.ctx.config.seed, step])
    idx = np.stack([rng.choice(c, self.batch, replace=len(c) < self.batch)
                    for c in self.by_class])
    state, metrics = self.step_fn(state, self.x_train, jnp.asarray(idx))
    return state, jax.device_get(metrics), f"mean step {step}"
