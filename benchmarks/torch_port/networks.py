"""The official networks (networks.py of DC/DSA/MTT) in PyTorch, NCHW; `res=64` takes
the official PAD networks.py's Tiny ImageNet changes (first conv at stride 2 for LeNet,
AlexNet and ResNet; VGG's closing AvgPool2d(1) at stride 2)."""
import torch
from torch import nn
import torch.nn.functional as F


def _norm(kind, channels, shape_chw=None):
  if kind == "instancenorm":
    return nn.GroupNorm(channels, channels, affine=True)
  if kind == "batchnorm":
    return nn.BatchNorm2d(channels, affine=True)
  if kind == "layernorm":
    return nn.LayerNorm(shape_chw, elementwise_affine=True)
  if kind == "none":
    return nn.Identity()
  raise ValueError(kind)


class ConvNet(nn.Module):
  def __init__(self, channel, num_classes, width=128, depth=3, norm="instancenorm",
               pooling="avgpooling", im_size=(32, 32), one_channel_padding=3):
    super().__init__()
    layers = []
    c, h, w = channel, im_size[0], im_size[1]
    for d in range(depth):
      # networks.py: padding=3 if channel == 1 and d == 0 else 1 (28 px -> 32 px maps)
      pad = one_channel_padding if channel == 1 and d == 0 else 1
      layers += [nn.Conv2d(c, width, 3, padding=pad)]
      h, w = h + 2 * pad - 2, w + 2 * pad - 2
      c = width
      if norm != "none":
        layers += [_norm(norm, width, (width, h, w))]
      layers += [nn.ReLU(inplace=True)]
      if pooling == "avgpooling":
        layers += [nn.AvgPool2d(2, 2)]
      elif pooling == "maxpooling":
        layers += [nn.MaxPool2d(2, 2)]
      if pooling != "none":
        h, w = h // 2, w // 2
    self.features = nn.Sequential(*layers)
    self.classifier = nn.Linear(c * h * w, num_classes)

  def forward(self, x):
    return self.classifier(self.features(x).reshape(x.shape[0], -1))


class MLP(nn.Module):
  def __init__(self, channel, num_classes, im_size=(32, 32), hidden=(128, 128)):
    super().__init__()
    dims = [channel * im_size[0] * im_size[1], *hidden]
    self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
    self.out = nn.Linear(dims[-1], num_classes)

  def forward(self, x):
    x = x.reshape(x.shape[0], -1)
    for layer in self.hidden:
      x = F.relu(layer(x))
    return self.out(x)


def _stride(res):
  return 1 if res == 32 else 2


class LeNet(nn.Module):
  def __init__(self, channel, num_classes, res=32):
    super().__init__()
    self.features = nn.Sequential(
        nn.Conv2d(channel, 6, 5, padding=2 if channel == 1 else 0, stride=_stride(res)),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2, 2), nn.Conv2d(6, 16, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2))
    self.fc_1 = nn.Linear(16 * 5 * 5, 120)
    self.fc_2 = nn.Linear(120, 84)
    self.fc_3 = nn.Linear(84, num_classes)

  def forward(self, x):
    x = self.features(x).reshape(x.shape[0], -1)
    return self.fc_3(F.relu(self.fc_2(F.relu(self.fc_1(x)))))


class AlexNet(nn.Module):
  def __init__(self, channel, num_classes, res=32):
    super().__init__()
    self.features = nn.Sequential(
        nn.Conv2d(channel, 128, 5, _stride(res), padding=4 if channel == 1 else 2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(128, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
        nn.Conv2d(192, 256, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 192, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(192, 192, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2))
    self.fc = nn.Linear(192 * 4 * 4, num_classes)

  def forward(self, x):
    return self.fc(self.features(x).reshape(x.shape[0], -1))


class VGG11(nn.Module):
  CFG = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]

  def __init__(self, channel, num_classes, norm="instancenorm", res=32):
    super().__init__()
    layers, c = [], channel
    for i, v in enumerate(self.CFG):
      if v == "M":
        layers += [nn.MaxPool2d(2, 2)]
      else:
        layers += [nn.Conv2d(c, v, 3, padding=3 if channel == 1 and i == 0 else 1),
                   _norm(norm, v), nn.ReLU(inplace=True)]
        c = v
    layers += [nn.AvgPool2d(kernel_size=1, stride=_stride(res))]
    self.features = nn.Sequential(*layers)
    self.classifier = nn.Linear(512, num_classes)

  def forward(self, x):
    return self.classifier(self.features(x).reshape(x.shape[0], -1))


class BasicBlock(nn.Module):
  def __init__(self, cin, cout, stride, norm):
    super().__init__()
    self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
    self.bn1 = _norm(norm, cout)
    self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
    self.bn2 = _norm(norm, cout)
    self.shortcut = nn.Sequential()
    if stride != 1 or cin != cout:
      self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                    _norm(norm, cout))

  def forward(self, x):
    out = F.relu(self.bn1(self.conv1(x)))
    out = self.bn2(self.conv2(out))
    return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
  def __init__(self, channel, num_classes, norm="instancenorm", res=32):
    super().__init__()
    self.conv1 = nn.Conv2d(channel, 64, 3, _stride(res), 1, bias=False)
    self.bn1 = _norm(norm, 64)
    blocks, cin = [], 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
      for b in range(2):
        blocks.append(BasicBlock(cin, cout, stride if b == 0 else 1, norm))
        cin = cout
    self.layers = nn.Sequential(*blocks)
    self.classifier = nn.Linear(512, num_classes)

  def forward(self, x):
    out = self.layers(F.relu(self.bn1(self.conv1(x))))
    out = F.adaptive_avg_pool2d(out, 1).reshape(x.shape[0], -1)
    return self.classifier(out)


class _TorchvisionBlock(nn.Module):
  def __init__(self, cin, cout, stride):
    super().__init__()
    self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(cout)
    self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(cout)
    self.downsample = None
    if stride != 1 or cin != cout:
      self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))

  def forward(self, x):
    out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
    return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet18ImageNet(nn.Module):
  """torchvision's resnet18 with its state-dict names (conv1, bn1, layer1.0.conv1, ...,
  layer2.0.downsample.0, fc)."""

  def __init__(self, num_classes=1000):
    super().__init__()
    self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
    self.bn1 = nn.BatchNorm2d(64)
    self.maxpool = nn.MaxPool2d(3, 2, 1)
    cin = 64
    for i, (cout, stride) in enumerate(((64, 1), (128, 2), (256, 2), (512, 2))):
      setattr(self, f"layer{i + 1}", nn.Sequential(_TorchvisionBlock(cin, cout, stride),
                                                   _TorchvisionBlock(cout, cout, 1)))
      cin = cout
    self.fc = nn.Linear(512, num_classes)

  def forward(self, x):
    x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
    for i in range(1, 5):
      x = getattr(self, f"layer{i}")(x)
    return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def build(name, channel, num_classes, im_size):
  res = 64 if im_size[0] == 64 else 32
  return {
      "ConvNet": lambda: ConvNet(channel, num_classes, im_size=im_size),
      "ConvNetBN": lambda: ConvNet(channel, num_classes, norm="batchnorm", im_size=im_size),
      "LeNet": lambda: LeNet(channel, num_classes, res=res),
      "AlexNet": lambda: AlexNet(channel, num_classes, res=res),
      "VGG11": lambda: VGG11(channel, num_classes, res=res),
      "ResNet18": lambda: ResNet18(channel, num_classes, res=res),
      "MLP": lambda: MLP(channel, num_classes, im_size=im_size),
      "MLP128": lambda: MLP(channel, num_classes, im_size=im_size, hidden=(128,)),
  }[name]()


def load_flat(net, tensors):
  """Copies tensors (torch layout, in parameter order) into net.parameters()."""
  params = list(net.parameters())
  assert len(params) == len(tensors), (len(params), len(tensors))
  with torch.no_grad():
    for p, t in zip(params, tensors):
      assert tuple(p.shape) == tuple(t.shape), (p.shape, t.shape)
      p.copy_(torch.as_tensor(t))
