"""The official training loops in PyTorch: one epoch of SGD with DSA (as used to train
experts and, inside `evaluate_synset`, evaluation nets), and `evaluate_synset` itself."""
import time

import torch
from torch import nn

from benchmarks.torch_port import augment


def epoch(net, loader, optimizer, dsa_strategy="color_crop_cutout_flip_scale_rotate",
          train=True):
  criterion = nn.CrossEntropyLoss()
  net.train(train)
  total_loss, correct, count = 0.0, 0, 0
  for x, y in loader:
    if train and dsa_strategy:
      x = augment.dsa(x, dsa_strategy)
    out = net(x)
    loss = criterion(out, y)
    total_loss += loss.item() * len(y)
    correct += (out.argmax(1) == y).sum().item()
    count += len(y)
    if train:
      optimizer.zero_grad()
      loss.backward()
      optimizer.step()
  return total_loss / count, correct / count


def train_synset(net, images, labels, lr=0.01, epochs=1000, batch=256,
                 dsa_strategy="color_crop_cutout_flip_scale_rotate"):
  """evaluate_synset's training: epochs + 1 epochs of SGD momentum 0.9, wd 5e-4, the lr
  x0.1 after epoch epochs // 2 + 1 with a new optimiser."""
  optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
  loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels),
                                       batch_size=batch, shuffle=True, num_workers=0)
  for ep in range(epochs + 1):
    epoch(net, loader, optimizer, dsa_strategy)
    if ep == epochs // 2 + 1:
      lr *= 0.1
      optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
  return net


def evaluate_synset(net, images, labels, test_loader, lr=0.01, epochs=1000, batch=256):
  """SGD momentum 0.9, wd 5e-4, lr x0.1 after epochs // 2 + 1, test at the end."""
  optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
  loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels),
                                       batch_size=batch, shuffle=True, num_workers=0)
  start = time.perf_counter()
  for ep in range(epochs + 1):
    epoch(net, loader, optimizer)
    if ep == epochs // 2 + 1:
      lr *= 0.1
      optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
  train_time = time.perf_counter() - start
  with torch.no_grad():
    _, acc = epoch(net, test_loader, None, train=False)
  return acc, train_time
