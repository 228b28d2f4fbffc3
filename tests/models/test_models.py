"""Models: parameter counts, conv kernels agree, PyTorch order/layout and parity."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dd_jax import models
from dd_jax.errors import ConfigError
from dd_jax.models import layers
from dd_jax.models.torch_layout import TorchLayout


def _init(model, shape, key=0):
  init = jax.jit(lambda k: model.init(k, jnp.zeros((2,) + shape), train=False))
  return init(jax.random.PRNGKey(key))


def _logits(model, variables, x):
  return jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)


def test_convnet3_cifar_has_official_parameter_count_and_order():
  layout = TorchLayout.of(models.build("ConvNet", 10), (32, 32, 3))
  assert layout.num_params == 320_010
  assert layout.names == (
      "conv0.weight", "conv0.bias", "norm0.norm.weight", "norm0.norm.bias",
      "conv1.weight", "conv1.bias", "norm1.norm.weight", "norm1.norm.bias",
      "conv2.weight", "conv2.bias", "norm2.norm.weight", "norm2.norm.bias",
      "fc.weight", "fc.bias")
  # PAD's cut at ratio 0.5 lands 8,325 weights into conv2 (shared/METHODS.md).
  name, start, _ = layout.segments()[8]
  assert name == "conv2.weight" and 160_005 - start == 8_325


def test_flatten_unflatten_round_trip_survives_tree_maps():
  model = models.build("ConvNet", 10, width=8)
  params = _init(model, (28, 28, 1))["params"]
  params = jax.tree.map(lambda x: x * 2.0, params)   # re-sorts dict keys
  layout = TorchLayout.of(model, (28, 28, 1))
  flat = layout.flatten(params)
  assert flat.shape == (layout.num_params,)
  # The first entries are conv0's OIHW weights: out-channel 0, in 0, row 0.
  np.testing.assert_array_equal(flat[:3], params["conv0"]["kernel"][0, :3, 0, 0])
  back = layout.unflatten(flat)
  jax.tree.map(np.testing.assert_array_equal, back, params)


@pytest.mark.parametrize("stride,padding,k,cin", [(1, 1, 3, 3), (2, 1, 3, 4), (1, 2, 5, 1),
                                                  (1, 0, 5, 6), (2, 0, 1, 8)])
def test_im2col_matches_lax_conv_values_and_second_derivatives(stride, padding, k, cin):
  kx, kw = jax.random.split(jax.random.PRNGKey(0))
  x = jax.random.normal(kx, (2, 9, 9, cin))
  w = jax.random.normal(kw, (k, k, cin, 5)) * 0.3
  a = layers.conv2d_im2col(x, w, stride, padding)
  b = layers.conv2d_lax(x, w, stride, padding)
  np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)

  def meta(fn):  # d/dx of a loss after one gradient step on w: a grad of a grad
    def inner(w, x):
      return jnp.sum(jnp.tanh(fn(x, w, stride, padding)) ** 2)
    def outer(x):
      w1 = w - 0.1 * jax.grad(inner)(w, x)
      return inner(w1, x)
    return jax.grad(outer)(x)

  # Second derivatives in f32 differ by rounding (~1e-3): compare exactly in float64.
  with jax.enable_x64(True):
    x, w = jnp.asarray(x, jnp.float64), jnp.asarray(w, jnp.float64)
    np.testing.assert_allclose(meta(layers.conv2d_im2col), meta(layers.conv2d_lax),
                               atol=1e-10, rtol=1e-10)


def test_auto_picks_im2col_on_cpu():
  assert layers.resolve_conv_impl("auto") == ("im2col" if jax.default_backend() == "cpu"
                                              else "lax")


# The other architectures are checked against PyTorch below.
@pytest.mark.parametrize("name,shape", [
    ("ConvNetBN", (32, 32, 3)), ("LeNet", (32, 32, 3)), ("ResNet18BN", (28, 28, 1)),
    ("ConvNetD4", (64, 64, 3))])
def test_batchnorm_and_other_sizes_give_logits(name, shape):
  model = models.build(name, 7)
  variables = _init(model, shape)
  logits = _logits(model, variables, jnp.ones((3,) + shape))
  assert logits.shape == (3, 7) and bool(jnp.all(jnp.isfinite(logits)))


def test_unknown_names_raise_config_errors():
  with pytest.raises(ConfigError, match="model.arch: unknown architecture 'ResNet99'"):
    models.build("ResNet99", 10)
  with pytest.raises(ConfigError, match="model.norm"):
    models.build("ConvNet", 10, norm="groupnorm")


@pytest.mark.parametrize("name,shape", [
    ("ConvNet", (32, 32, 3)), ("ConvNet", (28, 28, 1)), ("LeNet", (28, 28, 1)),
    ("AlexNet", (32, 32, 3)), ("VGG11", (28, 28, 1)), ("ResNet18", (28, 28, 1)),
    ("MLP", (32, 32, 3))])
def test_logits_equal_pytorch_with_the_same_weights(name, shape, norm=None):
  torch = pytest.importorskip("torch")
  from benchmarks.torch_port import networks
  model = models.build(name, 10, norm=norm)
  params = _init(model, shape, key=3)["params"]
  layout = TorchLayout.of(model, shape)
  net = (networks.ConvNet(shape[2], 10, norm=norm, im_size=shape[:2]) if norm
         else networks.build(name, shape[2], 10, shape[:2])).double()
  networks.load_flat(net, [np.asarray(v, np.float64)
                           for v in layout.state_dict(params).values()])
  x = np.random.default_rng(0).normal(size=(4,) + shape).astype(np.float32)
  ours = _logits(model, {"params": params}, jnp.asarray(x))
  with torch.no_grad():
    theirs = net.eval()(torch.as_tensor(x.transpose(0, 3, 1, 2)).double()).numpy()
  np.testing.assert_allclose(ours, theirs, rtol=2e-4, atol=2e-4)
  # And the flat vector is torch's parameters_to_vector.
  flat_torch = torch.nn.utils.parameters_to_vector(net.parameters()).detach().numpy()
  np.testing.assert_allclose(layout.flatten(params), flat_torch, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["LeNet", "AlexNet", "VGG11", "ResNet18", "MLP128"])
def test_tiny_imagenet_nets_take_pads_strides_and_equal_pytorch(name):
  """pad.txt line 456: at 64 px the first conv of ResNet, LeNet and AlexNet runs at
  stride 2 and VGG's last pooling too, so the classifier sees the 32 px net's features."""
  test_logits_equal_pytorch_with_the_same_weights(name, (64, 64, 3))
  fc_inputs = {"LeNet": 16 * 5 * 5, "AlexNet": 192 * 4 * 4, "VGG11": 512, "ResNet18": 512,
               "MLP128": 64 * 64 * 3}
  params = _init(models.build(name, 10), (64, 64, 3))["params"]
  first = {"LeNet": "fc0", "MLP128": "fc0"}.get(name, "fc")
  assert params[first]["kernel"].shape[0] == fc_inputs[name]


def test_layernorm_convnet_equals_pytorch_too():
  test_logits_equal_pytorch_with_the_same_weights("ConvNet", (28, 28, 1), norm="layernorm")


@pytest.mark.parametrize("padding,features", [(3, 128 * 4 * 4), (1, 128 * 3 * 3)])
def test_one_channel_convnet_sees_32px_maps_as_the_official_networks(padding, features):
  """networks.py pads a one-channel image's first conv by 3: 28 px -> 32 -> 16 -> 8 -> 4,
  a 2048-wide classifier (padding 1, dd_jax's old net: 28 -> 14 -> 7 -> 3)."""
  model = models.build("ConvNet", 10, one_channel_padding=padding)
  params = _init(model, (28, 28, 1), key=0)["params"]
  assert params["fc"]["kernel"].shape == (features, 10)
  rgb = _init(models.build("ConvNet", 10, one_channel_padding=padding), (32, 32, 3), 0)
  assert rgb["params"]["fc"]["kernel"].shape == (128 * 4 * 4, 10)   # RGB: untouched
  with pytest.raises(ConfigError, match="model.one_channel_padding"):
    models.build("ConvNet", 10, one_channel_padding=-1)
