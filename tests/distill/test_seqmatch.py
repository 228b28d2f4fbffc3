"""SeqMatch: subsets distilled in sequence (frozen earlier ones in the inner loop), one
resumable run, sequential evaluation, the warm-started experts option, bad input."""
import copy
import os

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from dd_jax import models
from dd_jax.distill import run, seqmatch, step
from dd_jax.distill.step import StepSettings
from dd_jax.errors import ConfigError
from dd_jax.evaluate import protocol
from dd_jax.experts import store
from tests.distill.conftest import _config, _synset, expert_segment
from tests.distill.test_run import _crash_at_step


def _seq_config(shared, **seq):
  """Two subsets on the shared experts (no extra experts to train), subset 2 on the
  later start epoch."""
  config = _config(*shared, ipc=2, eval_every=0)
  with config.unlocked():
    config.seqmatch.subsets = (1, 1)
    config.seqmatch.iterations = (3, 2)
    config.seqmatch.experts = "shared"
    config.seqmatch.min_start_epochs, config.seqmatch.max_start_epochs = (0, 1), (1, 2)
    config.seqmatch.update(seq)
  return config


def _load(path):
  with np.load(path) as f:
    return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def straight(shared, tmp_path_factory):
  """One uninterrupted SeqMatch run (evaluated at its subsets' steps 0 and 2)."""
  config = _seq_config(shared)
  with config.unlocked():
    config.distill.eval_every = 2
  work = str(tmp_path_factory.mktemp("seqmatch") / "straight")
  run.distill(config, work)
  return config, work


def test_earlier_subsets_stay_bit_identical_and_the_set_is_their_union(straight):
  _, work = straight
  first = _load(os.path.join(work, "distill", "subset_1.npz"))
  second = _load(os.path.join(work, "distill", "subset_2.npz"))
  initial = _load(os.path.join(work, "distill", "initial.npz"))
  got = _synset(work)
  assert got["images"].shape[0] == 20 and got["labels"].tolist() == list(range(10)) * 2
  # Subset 1 as it was when its stage ended, unchanged by subset 2's steps.
  np.testing.assert_array_equal(got["images"][:10], first["images"])
  np.testing.assert_array_equal(got["images"][10:], second["images"])
  # Both were distilled from disjoint real images of the right class.
  first_init, _ = seqmatch.slice_subset(initial["images"], initial["labels"], 10, (1, 1), 0)
  second_init, labels = seqmatch.slice_subset(initial["images"], initial["labels"], 10,
                                              (1, 1), 1)
  assert labels.tolist() == list(range(10))
  assert not np.array_equal(first["images"], first_init)
  assert not np.array_equal(second["images"], second_init)
  assert not np.array_equal(first_init, second_init)
  meta = got["meta"].item()
  assert '"subsets": [1, 1]' in meta and float(got["lr"]) == pytest.approx(float(second["lr"]))
  # Each subset ran its own number of outer steps, on one continuing step count.
  assert ocp.CheckpointManager(os.path.join(work, "distill", "subset_2", "ckpt")
                               ).latest_step() == 2


def test_gradients_reach_only_the_current_subset(shared):
  config = _config(*shared, ipc=1)
  model, prepared, start, target = expert_segment(config, shared[1])
  settings = StepSettings.from_config(config.distill)
  x = jnp.asarray(prepared.x_train[:10])
  frozen_x = jnp.asarray(prepared.x_train[10:20])
  y = jnp.arange(10, dtype=jnp.int32)

  def loss(images, frozen_images, with_frozen=True):
    frozen = (frozen_images, y) if with_frozen else None
    return step.meta_loss(model, settings, images, jnp.float32(0.01), y, start, target,
                          {}, jax.random.PRNGKey(3), frozen=frozen)[0]

  g_current, g_frozen = jax.grad(loss, argnums=(0, 1))(x, frozen_x)
  assert float(jnp.abs(g_current).sum()) > 0
  assert float(jnp.abs(g_frozen).max()) == 0.0
  # The frozen images do take part in the inner batches.
  assert float(loss(x, frozen_x)) != float(loss(x, frozen_x, with_frozen=False))


def test_an_interrupted_sequence_resumes_to_the_same_set(shared, straight, tmp_path,
                                                        monkeypatch):
  config = _seq_config(shared)   # no evaluations: they do not change the set
  want = _synset(straight[1])
  with monkeypatch.context() as m:   # stops in subset 2, after subset 1 finished
    _crash_at_step(m, 4, RuntimeError("power cut"))
    with pytest.raises(RuntimeError):
      run.distill(config, str(tmp_path / "stopped"))
  assert os.path.exists(tmp_path / "stopped" / "distill" / "subset_1.npz")
  assert not os.path.exists(tmp_path / "stopped" / "distill" / "subset_2.npz")
  run.distill(config, str(tmp_path / "stopped"))
  got = _synset(str(tmp_path / "stopped"))
  np.testing.assert_array_equal(got["images"], want["images"])
  assert float(got["lr"]) == float(want["lr"])


def _eval_data(seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(20, 8, 8, 1)).astype(np.float32)
  y = np.arange(20) % 4
  xt = rng.normal(size=(40, 8, 8, 1)).astype(np.float32)
  return x, y, xt, np.arange(40) % 4


EVAL = dict(num_classes=4, arch="ConvNet", epochs=4, batch_size=8, num_nets=2,
            dsa_strategy="none", seed=0)


def _small():
  import ml_collections
  c = ml_collections.ConfigDict({"arch": "ConvNet", "width": 4, "depth": 2,
                                 "norm": "instancenorm", "pooling": "avgpooling",
                                 "activation": "relu", "conv_impl": "auto",
                                 "hidden": (8,)})
  return c


def test_sequential_evaluation_of_one_stage_is_the_ordinary_one_and_weights_carry_over():
  x, y, xt, yt = _eval_data()
  small = _small()
  one = protocol.evaluate_synset(x, y, xt, yt, lr=0.05, model_config=small, **EVAL)
  seq = protocol.evaluate_sequential([(x, y, 0.05)], xt, yt, model_config=small, **EVAL)
  np.testing.assert_array_equal(one.accuracies, seq.accuracies)
  np.testing.assert_array_equal(one.train_loss, seq.train_loss)
  # Two stages: the first is the ordinary evaluation of S1; the second continues from it
  # (not a fresh net on S1+S2).
  s1 = (x[:8], y[:8], 0.05)
  two = protocol.evaluate_sequential([s1, (x, y, 0.02)], xt, yt, model_config=small,
                                     **EVAL)
  alone = protocol.evaluate_synset(*s1[:2], xt, yt, lr=0.05, model_config=small, **EVAL)
  assert two.stage_means[0] == pytest.approx(alone.mean)
  fresh = protocol.evaluate_synset(x, y, xt, yt, lr=0.02, model_config=small, **EVAL)
  assert len(two.stage_means) == 2
  assert not np.array_equal(two.train_loss, fresh.train_loss)


def test_a_seqmatch_run_reports_sequential_next_to_ordinary_evaluation(straight, tmp_path):
  config, work = straight
  evals = store.read_json(os.path.join(work, "distill", "subset_2", "evals.json"))
  assert [e["step"] for e in evals] == [0, 2]
  assert "sequential" not in store.read_json(
      os.path.join(work, "distill", "subset_1", "evals.json"))[-1]["ConvNet"]
  last = evals[-1]["ConvNet"]
  assert 0 <= last["mean"] <= 1 and len(last["sequential"]["stage_means"]) == 2
  assert last["sequential"]["mean"] == pytest.approx(last["sequential"]["stage_means"][-1])
  # The stored set alone (python -m dd_jax.evaluate) gives the same two figures.
  from dd_jax.evaluate import run as eval_run
  config = copy.deepcopy(config)
  with config.unlocked():
    config.eval.source = os.path.join(work, "synset.npz")
  eval_run.evaluate_from_config(config, str(tmp_path / "e"))
  stored = store.read_json(str(tmp_path / "e" / "eval_results.json"))["results"]["ConvNet"]
  assert stored["mean"] == pytest.approx(last["mean"])
  assert stored["sequential"]["stage_means"] == pytest.approx(
      last["sequential"]["stage_means"])


def test_warm_started_experts_start_from_a_net_trained_on_the_earlier_subsets(shared,
                                                                               tmp_path):
  config = _seq_config(shared, experts="warm_start", warm_start_epochs=2,
                       iterations=(1, 1))
  with config.unlocked():
    config.expert.num_experts = 1
  work = str(tmp_path / "warm")
  run.distill(config, work)
  warm_dir = os.path.join(work, "distill", "subset_2", "experts")
  reader = store.ExpertReader(warm_dir)
  assert reader.spec["warm_start"]["epochs"] == 2
  model = models.from_config(config.model, 10)
  x0 = jnp.zeros((1, 28, 28, 1))
  abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype),
                          model.init(jax.random.PRNGKey(0), x0, train=False)["params"])
  shared_start = store.ExpertReader(shared[1]).params(0, 0, abstract)
  warm_start = reader.params(0, 0, abstract)
  # Same init key, but the warm expert's epoch 0 has been trained on subset 1.
  assert any(not np.array_equal(a, b) for a, b in
             zip(jax.tree.leaves(shared_start), jax.tree.leaves(warm_start)))
  first = _load(os.path.join(work, "distill", "subset_1.npz"))
  w = seqmatch.WarmStart([(first["images"], first["labels"], float(first["lr"]))], 2,
                         config.eval)
  params, _ = w(model, jax.random.split(jax.random.fold_in(jax.random.PRNGKey(0), 0))[0],
                x0)
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(warm_start)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("change, field, words", [
    (dict(subsets=(1, 2)), "seqmatch.subsets", "sum to 3"),
    (dict(subsets=(2, 0)), "seqmatch.subsets[1]", "at least one image"),
    (dict(max_start_epochs=(1, 3)), "seqmatch.max_start_epochs[1]", "beyond"),
    (dict(lr_img=(1.0,)), "seqmatch.lr_img", "1 values for 2 subsets"),
    (dict(min_start_epochs=(0, 1), max_start_epochs=(1, 1)),
     "seqmatch.min_start_epochs[1]", "window"),
    (dict(expert_epochs=(1,)), "seqmatch.expert_epochs", "1 values for 2 subsets"),
    # shared experts: subset 2 on an earlier segment is the opposite of SeqMatch's idea
    (dict(min_start_epochs=(1, 0), max_start_epochs=(2, 1)),
     "seqmatch.min_start_epochs[1]", "does not lie after subset 1's [1, 2)"),
    (dict(expert_epochs=(1, 2)), "seqmatch.max_start_epochs[1]", "expert_epochs=2"),
])
def test_bad_subsets_are_one_clear_error_before_any_work(shared, tmp_path, change, field,
                                                         words):
  config = _seq_config(shared, **change)
  with pytest.raises(ConfigError) as err:
    run.distill(config, str(tmp_path / "bad"))
  assert err.value.field == field and words in str(err.value)
  assert not os.path.exists(tmp_path / "bad")


def test_seqmatch_composes_with_datm_pad_and_ast_switches(shared, tmp_path):
  config = _seq_config(shared, iterations=(2, 1))
  with config.unlocked():
    d = config.distill
    d.soft_labels, d.lr_y = True, 2.0                              # DATM
    d.param_mask, d.param_mask_ratio = "depth", 0.25               # PAD's FIEM
    d.expert_epochs, d.syn_steps, d.intermediate = 1, 3, "equal"   # AST
    d.perturb_rho, d.balance_loss = 0.1, True
  run.distill(config, str(tmp_path / "all"))
  got = _synset(str(tmp_path / "all"))
  first = _load(str(tmp_path / "all" / "distill" / "subset_1.npz"))
  assert got["labels"].shape == (20, 10)                 # soft logits for both subsets
  np.testing.assert_array_equal(got["labels"][:10], first["labels"])
  np.testing.assert_array_equal(got["images"][:10], first["images"])
  # Subset 2's labels were learned from the expert logits of its initial images.
  initial = _load(str(tmp_path / "all" / "distill" / "initial.npz"))
  assert initial["labels"].shape == (20, 10)
  start = seqmatch.slice_subset(initial["images"], initial["labels"], 10, (1, 1), 1)[1]
  assert not np.array_equal(got["labels"][10:], start)


def test_the_default_is_the_papers_warm_started_experts_and_m_is_per_subset():
  """seqmatch.txt section 3 / Table 4: later subsets match experts trained after the
  earlier subsets, each subset with its own window and M (CIFAR-10 IPC 10: {2, 3})."""
  from configs import cifar10_seqmatch, common
  assert common.base_config().seqmatch.experts == "warm_start"
  config = cifar10_seqmatch.get_config("ipc=10")
  stages = [seqmatch.stage_config(config, k, 10).distill for k in range(2)]
  assert [(d.max_start_epoch, d.syn_steps, d.expert_epochs) for d in stages] == [
      (20, 30, 2), (10, 80, 3)]
