"""Knowledge-distillation evaluation: the loss, and its reduction to soft labels."""
import jax
import jax.numpy as jnp
import numpy as np

from dd_jax import models, training
from dd_jax.evaluate.protocol import Teacher
from tests.evaluate.test_protocol import SMALL, _data, _evaluate


def _init_params(model, x, seed=0, net=0, num_nets=1):
  """The params the protocol gives net `net` (its init keys, as evaluate_sequential)."""
  init_keys, _ = jax.random.split(jax.random.PRNGKey(seed))
  key = jax.random.split(init_keys, num_nets)[net]
  return model.init(key, jnp.asarray(x[:1]), train=False)["params"]


def test_kd_from_the_students_own_init_is_soft_label_training_on_its_logits():
  x, y, xt, yt = _data()
  model = models.from_config(SMALL, 10)
  params = _init_params(model, x)
  logits = np.asarray(model.apply({"params": params}, jnp.asarray(x), train=False))
  soft = _evaluate(x, logits, xt, yt, num_nets=1, epochs=5)
  kd = _evaluate(x, y, xt, yt, num_nets=1, epochs=5,
                 teacher=Teacher(model, {"params": params}, temperature=1.0))
  np.testing.assert_allclose(kd.train_loss, soft.train_loss, rtol=1e-5)
  np.testing.assert_array_equal(kd.accuracies, soft.accuracies)


def test_the_kd_loss_is_t_squared_times_the_soft_cross_entropy_at_t():
  x, y, _, _ = _data()
  student = models.from_config(SMALL, 10)
  teacher = models.from_config(SMALL, 10)
  s_params = _init_params(student, x, seed=1)
  t_params = _init_params(teacher, x, seed=2)
  tx = training.direction("sgd", 0.0, 0.0)
  epoch = jax.jit(training.make_train_epoch(student, tx, len(x), "none", teacher=teacher,
                                            temperature=2.0))
  state = training.NetState(params=s_params, batch_stats={}, opt_state=tx.init(s_params))
  _, loss, _ = epoch(state, jnp.float32(0.0), jnp.asarray(x), jnp.asarray(y),
                     jax.random.PRNGKey(0), 1.0, {"params": t_params})
  s = student.apply({"params": s_params}, jnp.asarray(x), train=False)
  t = teacher.apply({"params": t_params}, jnp.asarray(x), train=False)
  expected = 4.0 * jnp.mean(-jnp.sum(jax.nn.softmax(t / 2) * jax.nn.log_softmax(s / 2), -1))
  np.testing.assert_allclose(float(loss), float(expected), rtol=1e-5)
