"""The bad-input matrix: configs, data, experts and GAN files that are wrong in type,
range, path, shape, dataset or name, and pickles that try to run code. Each is one line
naming the field and the fix (a ConfigError; the command line prints it as
`error: <field>: <problem>. Fix: <fix>` with exit status 2), raised before anything is
computed or written."""
import gzip
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest
from dd_jax.distill import run
from dd_jax.errors import ConfigError
from dd_jax.evaluate import run as eval_run
from dd_jax.gan import build, convert, generator
from tests.conftest import ROOT
from tests.distill.conftest import _config

CONFIG = os.path.join(ROOT, "configs", "fashion_mnist_mtt.py")


def _distill(config, tmp_path):
  run.distill(config, str(tmp_path / "run"))


def _set(**fields):
  """A case that sets dotted config fields and distils."""
  def case(shared, tmp_path):
    config = _config(*shared)
    with config.unlocked():
      for name, value in fields.items():
        section, _, field = name.rpartition("__")
        config[section][field] = value
    _distill(config, tmp_path)
  return case


def _flags(*argv):
  """A case that gives a command line to `python -m dd_jax.main`: its last stderr line
  (exit status 2, no traceback) read back as the error."""
  def case(shared, tmp_path):
    del shared
    out = subprocess.run([sys.executable, "-m", "dd_jax.main", *argv,
                          f"--workdir={tmp_path / 'run'}"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith("error: "), line
    field, _, rest = line[len("error: "):].partition(": ")
    problem, _, fix = rest.partition(". Fix: ")
    raise ConfigError(field, problem, fix)
  return case


def _idx(shared, tmp_path, damage):
  data = str(tmp_path / "idx")
  shutil.copytree(shared[0], data)
  damage(data)
  config = _config(data, shared[1])
  _distill(config, tmp_path)


def _truncated_images(data):
  path = os.path.join(data, "train-images-idx3-ubyte.gz")
  with gzip.open(path) as f:
    raw = f.read()
  with gzip.open(path, "wb") as f:
    f.write(raw[: len(raw) // 2])


def _eval(source_maker):
  def case(shared, tmp_path):
    config = _config(*shared)
    with config.unlocked():
      config.eval.source = source_maker(tmp_path)
    eval_run.evaluate_from_config(config, str(tmp_path / "eval"))
  return case


def _eval_set(**fields):
  """A case that sets eval fields and evaluates."""
  def case(shared, tmp_path):
    config = _config(*shared)
    with config.unlocked():
      config.eval.update(fields)
    eval_run.evaluate_from_config(config, str(tmp_path / "eval"))
  return case


def _npz(tmp_path, **arrays):
  path = str(tmp_path / "set.npz")
  np.savez(path, **arrays)
  return path


def _truncated_npz(tmp_path):
  path = _npz(tmp_path, images=np.zeros((10, 28, 28, 1), np.float32), labels=np.arange(10))
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)
  return path


def _experts(mutate):
  def case(shared, tmp_path):
    copy = str(tmp_path / "experts")
    shutil.copytree(shared[1], copy)
    config = _config(shared[0], copy)
    mutate(copy, config)
    _distill(config, tmp_path)
  return case


def _other_width(copy, config):
  with config.unlocked():
    config.model.width = 16


def _truncated_metadata(copy, config):
  path = os.path.join(copy, "expert_000", "metadata.json")
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)


def _not_experts(copy, config):
  shutil.rmtree(copy)
  os.makedirs(os.path.join(copy, "photos"))
  with config.unlocked():
    config.expert.num_experts = 2


def _prior(damage=None, c_dim=10, **glad):
  def case(shared, tmp_path):
    folder = str(tmp_path / "prior")
    spec, params = build.random_generator(seed=0, resolution=16, img_channels=1,
                                          c_dim=c_dim, num_layers=3, channel_base=64,
                                          channel_max=8, w_dim=16, z_dim=8)
    generator.save(folder, spec, params)
    if damage:
      damage(folder)
    config = _config(*shared)
    with config.unlocked():
      config.distill.parameterization = "glad"
      config.gan.prior = folder
      config.glad.update(glad)
    _distill(config, tmp_path)
  return case


def _truncate_params(folder):
  path = os.path.join(folder, "params.npz")
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 3)


class _RunsCode:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def _evil_pickle(shared, tmp_path):
  del shared
  path = str(tmp_path / "evil.pkl")
  with open(path, "wb") as f:
    pickle.dump({"G_ema": _RunsCode(str(tmp_path / "ran"))}, f)
  try:
    convert.convert(path, str(tmp_path / "out"))
  finally:
    assert not os.path.exists(tmp_path / "ran")      # the code never ran


CASES = {
    # configs: ranges, names, shapes
    "ipc zero": (_set(distill__ipc=0), "distill.ipc", "is 0"),
    "negative image lr": (_set(distill__lr_img=-1.0), "distill.lr_img", "positive"),
    "unknown method": (_set(distill__method="mttx"), "distill.method", "unknown"),
    "unknown architecture": (_set(model__arch="ResNet50"), "model.arch", "unknown"),
    "unknown norm": (_set(model__norm="groupnorm"), "model.norm", "unknown"),
    "unknown augmentation": (_set(distill__dsa_strategy="color_blur"),
                             "distill.dsa_strategy", "blur"),
    "unknown expert order": (_set(distill__expert_order="shuffle"), "distill.expert_order",
                             "unknown 'shuffle'"),
    "mask ratio above 1": (_set(distill__param_mask_ratio=1.5), "distill.param_mask_ratio",
                           "1.5"),
    "start window past the experts": (_set(distill__max_start_epoch=5),
                                      "distill.max_start_epoch", "epoch"),
    "more devices than there are": (_set(mesh__data=3), "mesh.data", "devices"),
    "subsets that do not sum to the ipc": (_set(seqmatch__subsets=(1, 2)),
                                           "seqmatch.subsets", "sum"),
    "a multi-formation factor that does not divide the image": (
        _set(distill__method="idc", idc__factor=3), "idc.factor", "does not divide"),
    "unknown parameterisation": (_set(distill__parameterization="latent"),
                                 "distill.parameterization", "unknown"),
    "non-finite lr factor out of range": (_set(distill__nonfinite_lr_factor=2.0),
                                          "distill.nonfinite_lr_factor", "is 2.0"),
    # the command line: types, unknown fields, files
    "a word for an int": (_flags(f"--config={CONFIG}:runlocal", "--config.distill.ipc=ten"),
                          "--config.distill.ipc", "'ten'"),
    "a misspelt field": (_flags(f"--config={CONFIG}:runlocal", "--config.distill.ipcc=3"),
                         "--config.distill.ipcc", "did you mean ipc"),
    "a config file that is not there": (_flags("--config=configs/nope_mtt.py"), "--config",
                                        "nope_mtt.py"),
    "a variant the file does not have": (_flags(f"--config={CONFIG}:ipc=7"), "--config",
                                         "ipc=7"),
    "a misspelt variant": (_flags(f"--config={CONFIG}:ipc=1,runlocl"), "--config",
                           "'runlocl' is not one this config file uses with these "
                           "variants (did you mean runlocal?)"),
    "a variant the config does not use": (_flags(f"--config={CONFIG}:runlocal,fiex=0"),
                                          "--config", "'fiex' is not one"),
    "a flag the command does not have": (_flags(f"--config={CONFIG}:runlocal",
                                                "--worrkdir=/tmp/x"), "--worrkdir",
                                         "no such flag"),
    "no config file given": (_flags(), "--config", "not given"),
    # data
    "a data folder that is not there": (_set(data__data_dir="/nonexistent/fmnist"),
                                        "data.data_dir", "does not exist"),
    "a truncated image file": (lambda s, t: _idx(s, t, _truncated_images), "data.data_dir",
                               "truncated"),
    "an unknown dataset": (_set(data__name="fashionmnist"), "data.name", "unknown dataset"),
    "a synthetic set that is not there": (_eval(lambda t: str(t / "none.npz")),
                                          "eval.source", "does not exist"),
    "a truncated synthetic set": (_eval(_truncated_npz), "eval.source", "not a readable"),
    "a synthetic set with a pickle inside": (
        _eval(lambda t: _npz(t, images=np.array([{"run": "code"}], dtype=object),
                             labels=np.arange(1))), "eval.source", "pickled objects"),
    "a synthetic set of another dataset": (
        _eval(lambda t: _npz(t, images=np.zeros((10, 32, 32, 3), np.float32),
                             labels=np.arange(10))), "eval.source", "(32, 32, 3)"),
    "a stored set given to a distillation": (_set(eval__source="/nonexistent.npz"),
                                             "eval.source", "evaluates the set it distils"),
    "an unknown evaluation protocol": (_eval_set(protocol="dsa"), "eval.protocol",
                                       "unknown 'dsa'"),
    "a KD temperature of zero": (_eval_set(kd=True, kd_temperature=0.0),
                                 "eval.kd_temperature", "is 0.0"),
    "a KD teacher folder without experts": (_eval_set(kd=True, kd_teacher="/nonexistent/x"),
                                            "eval.kd_teacher", "holds no experts"),
    # experts
    "experts of another model": (_experts(_other_width), "expert.dir", "model"),
    "a truncated expert metadata file": (_experts(_truncated_metadata), "expert.dir",
                                         "not valid JSON"),
    "a folder that holds no experts": (_experts(_not_experts), "expert.dir",
                                       "is not empty"),
    "no experts to train": (_set(expert__num_experts=0), "expert.num_experts", "is 0"),
    # GAN files
    "a prior folder that is not there": (_set(distill__parameterization="glad",
                                              gan__prior="/nonexistent/prior"),
                                         "gan.prior", "no spec.json"),
    "a truncated prior": (_prior(damage=_truncate_params), "gan.prior", "not a readable"),
    "a prior of another class count": (_prior(c_dim=7), "gan.prior", "7 classes"),
    "a latent layer the prior does not have": (_prior(layer=9), "glad.layer", "9"),
    "a generator pickle that runs code": (_evil_pickle, "in.pkl", "G_ema"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_naming_the_field_and_the_fix(name, shared, tmp_path):
  case, field, words = CASES[name]
  with pytest.raises(ConfigError) as err:
    case(shared, tmp_path)
  message = str(err.value)
  assert err.value.field == field, message
  assert words in message and "\n" not in message and ". Fix: " in message, message
  assert err.value.fix.strip(), message
  assert not os.path.exists(tmp_path / "run" / "distill"), message   # nothing written


def test_the_matrix_is_at_least_twenty_cases_across_the_inputs():
  assert len(CASES) >= 20
  fields = {field.split(".")[0] for _, field, _ in CASES.values()}
  assert {"distill", "data", "eval", "expert", "gan", "--config"} <= fields
