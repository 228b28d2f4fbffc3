"""torchvision's ImageNet ResNet-18 converted without torch or pickled code: the same
logits as the PyTorch net, every tensor checked; H-PD reads it as its CAM network."""
import numpy as np
import pytest

from dd_jax.errors import ConfigError
from dd_jax.models import imagenet
from dd_jax.torch_pickle import load_state_dict

torch = pytest.importorskip("torch")


def _torchvision_resnet18(tmp_path, seed=0):
  from benchmarks.torch_port import networks
  torch.manual_seed(seed)
  net = networks.ResNet18ImageNet()
  with torch.no_grad():   # running statistics away from (0, 1) so they matter
    for m in net.modules():
      if isinstance(m, torch.nn.BatchNorm2d):
        m.running_mean.uniform_(-0.5, 0.5)
        m.running_var.uniform_(0.5, 2.0)
        m.weight.uniform_(0.5, 1.5)
  path = str(tmp_path / "resnet18.pth")
  torch.save(net.state_dict(), path)
  return net.eval(), path


def test_converted_resnet18_gives_torchs_logits_and_features(tmp_path):
  net, path = _torchvision_resnet18(tmp_path)
  state = load_state_dict(path)
  assert state["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
  out = str(tmp_path / "r18.msgpack")
  assert imagenet.main(["x", path, out]) == 0
  model, variables = imagenet.load(out)
  x = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype(np.float32)
  ours = np.asarray(model.apply(variables, x, train=False))
  with torch.no_grad():
    theirs = net(torch.as_tensor(x.transpose(0, 3, 1, 2))).numpy()
  np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-3)
  assert model.apply(variables, x, train=False, features=True).shape == (2, 2, 2, 512)


def test_a_wrong_or_unsafe_file_is_refused_naming_the_problem(tmp_path):
  net, path = _torchvision_resnet18(tmp_path)
  state = net.state_dict()
  state["fc.weight"] = torch.zeros(10, 512)
  bad = str(tmp_path / "bad.pth")
  torch.save(state, bad)
  with pytest.raises(ConfigError, match=r"fc\.weight has shape \(10, 512\)"):
    imagenet.convert(bad, str(tmp_path / "x.msgpack"))
  whole = str(tmp_path / "model.pth")
  torch.save(net, whole)                  # the module itself: needs its classes
  with pytest.raises(ConfigError, match=r"needs benchmarks\.torch_port\.networks\."):
    load_state_dict(whole)
  not_zip = tmp_path / "x.pth"
  not_zip.write_bytes(b"nope")
  with pytest.raises(ConfigError, match="is not a torch.save zip file"):
    load_state_dict(str(not_zip))
  assert not (tmp_path / "x.msgpack").exists()
