"""python -m dd_jax.interop: the official buffers and synthetic sets to ours and back,
read without torch's unpickler or any pickled code, every tensor's shape checked."""
import os

import jax
import numpy as np
import pytest

from dd_jax import interop, models
from dd_jax.distill import export
from dd_jax.data import pipeline
from dd_jax.errors import ConfigError
from dd_jax.experts import store, train
from tests.conftest import tiny_idx_config, write_idx_dataset

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def experts(tmp_path_factory):
  root = tmp_path_factory.mktemp("interop")
  config = tiny_idx_config(write_idx_dataset(root / "idx"))
  with config.unlocked():
    config.expert.num_experts, config.expert.epochs = 3, 2
  directory = train.train_experts(config, str(root))
  return config, directory, root


def _params(directory, config):
  reader = store.ExpertReader(directory)
  model = models.from_config(config.model, 10)
  abstract = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), np.zeros((1, 28, 28, 1)),
                                               train=False))["params"]
  out = [[reader.params(i, e, abstract) for e in range(reader.epochs + 1)]
         for i in reader.experts]
  reader.close()
  return out


def test_experts_round_trip_through_the_official_format_bit_identical(experts, tmp_path):
  config, directory, _ = experts
  files = interop.export_experts(directory, str(tmp_path / "buffers"), per_file=2)
  assert [os.path.basename(f) for f in files] == ["replay_buffer_0.pt", "replay_buffer_1.pt"]
  official = torch.load(files[0], weights_only=True)     # what the official code reads
  assert len(official) == 2 and len(official[0]) == 3                  # 2 experts x 3 epochs
  assert tuple(official[0][0][0].shape) == (8, 1, 3, 3)                # conv0.weight, OIHW
  assert interop.import_experts(str(tmp_path / "buffers"), config, str(tmp_path / "ours")) == 3
  before, after = _params(directory, config), _params(str(tmp_path / "ours"), config)
  for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # Run again: every expert is complete, nothing is rewritten.
  assert interop.import_experts(str(tmp_path / "buffers"), config, str(tmp_path / "ours")) == 3


def test_a_misshaped_tensor_is_named_and_a_pickle_that_runs_code_refused(experts, tmp_path):
  config, directory, _ = experts
  src = tmp_path / "buffers"
  files = interop.export_experts(directory, str(src))
  trajectories = torch.load(files[0], weights_only=True)
  trajectories[1][2][0] = torch.zeros(16, 1, 3, 3)
  torch.save(trajectories, files[0])
  with pytest.raises(ConfigError, match=r"^--src: replay_buffer_0\.pt trajectory 1 epoch 2: "
                                        r"conv0\.weight expected \(8, 1, 3, 3\), found "
                                        r"\(16, 1, 3, 3\)"):
    interop.import_experts(str(src), config, str(tmp_path / "ours"))

  class RunsCode:
    def __reduce__(self):
      return (os.system, (f"touch {tmp_path / 'ran'}",))

  torch.save([RunsCode()], files[0])
  with pytest.raises(ConfigError, match=r"needs (posix|os|nt)\.system.*refused"):
    interop.import_experts(str(src), config, str(tmp_path / "ours2"))
  assert not (tmp_path / "ran").exists()
  with pytest.raises(ConfigError, match=r"^--src: .* has no replay_buffer_<n>\.pt"):
    interop.import_experts(str(tmp_path), config, str(tmp_path / "ours3"))


@pytest.mark.parametrize("soft", [False, True])
def test_synthetic_sets_round_trip_through_the_official_files(experts, tmp_path, soft):
  config, _, _ = experts
  prepared = pipeline.prepare(config.data)
  rng = np.random.default_rng(0)
  images = rng.normal(size=(20, 28, 28, 1)).astype(np.float32)
  labels = (rng.normal(size=(20, 10)).astype(np.float32) if soft
            else np.repeat(np.arange(10), 2).astype(np.int32))
  ours = export.save_synset(str(tmp_path / "synset"), images, labels, 0.0123, prepared.pre,
                            10, {"data": prepared.describe()})["npz"]
  written = interop.export_synset(ours, str(tmp_path / "official"))
  assert sorted(os.path.basename(w) for w in written) == [
      "images_best.pt", "labels_best.pt", "lr_best.pt"]
  assert tuple(torch.load(written[0], weights_only=True).shape) == (20, 1, 28, 28)
  back = interop.import_synset(str(tmp_path / "official"), config, str(tmp_path / "b.npz"))
  with np.load(back["npz"]) as f:
    np.testing.assert_array_equal(f["images"], images)
    np.testing.assert_array_equal(f["labels"], labels)
    assert float(f["lr"]) == pytest.approx(0.0123)
  ranking = interop.export_synset(ours, str(tmp_path / "ddr"), fmt="ddranking")
  hard = torch.load(ranking[1], weights_only=True)
  hard = hard if hard.ndim == 1 else hard.argmax(1)
  assert (np.diff(hard.numpy()) >= 0).all()                 # ordered by class


def test_the_command_line_answers_bad_input_in_one_line(tmp_path, capsys):
  assert interop.main(["export-synset", str(tmp_path / "none.npz"),
                       "--dst", str(tmp_path / "o")]) == 1
  err = capsys.readouterr().err.strip()
  assert err.startswith("error: SRC: ") and "\n" not in err
  assert interop.main(["import-experts", "--src", str(tmp_path), "--config",
                       "configs/nope.py", "--dst", str(tmp_path / "d")]) == 1
  assert "--config: configs/nope.py does not exist" in capsys.readouterr().err
  with pytest.raises(SystemExit) as e:
    interop.main(["--help"])
  assert e.value.code == 0 and "import-experts" in capsys.readouterr().out
