"""One MTT outer step's gradients, ours against the official network's, in float64 and
float32 (issue 26: is a gap between the two distillations systematic or rounding?).

  python benchmarks/official_gradient.py --official=/tmp/mtt-distillation \
      --buffers=/tmp/opstudy/ipc1/buffers/FashionMNIST/ConvNet [--ipc=1 --seed=0 ...]
  python benchmarks/official_gradient.py --smoke [--official=/tmp/mtt-distillation]
      (one tiny expert, N 2; the official side only with a checkout)

From the same expert (the first trajectory of replay_buffer_0.pt, our experts exported
by dd_jax.interop), the same start epoch t, the same initial images (our
`pix_init="real"` draw for --seed) and lr: our `dd_jax.distill.step.meta_loss` (no DSA,
the whole set per inner step) is differentiated with respect to the images and the lr,
and so is the official side: the checkout's own ConvNet (utils.get_network) inside its
ReparamModule, unrolled as its distill.py does (N steps of `params - lr * grad(CE)` with
create_graph, then the squared distance to epoch t + M over that from epoch t, each
divided by the parameter count). Printed per precision: both losses and the relative
differences ||a - b|| / ||b|| of the image and lr gradients, ours against the official
and each side's float32 against its float64. Equal math gives float64 differences near
1e-12; rounding alone gives float32 differences of the size of each side's own
float32-vs-float64 difference.
"""
import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common, eval_parity  # noqa: E402


def ours(config, trajectory, images, labels, a, dtype):
  """Our loss and (image, lr) gradients: step.meta_loss, as the compiled step calls it."""
  from dd_jax import models
  from dd_jax.distill import step as step_lib
  from dd_jax.models.torch_layout import TorchLayout
  model = models.from_config(config.model, 10)
  layout = TorchLayout.of(model, images.shape[1:])

  def params(epoch):
    flat = np.concatenate([np.asarray(t, np.float64).reshape(-1) for t in trajectory[epoch]])
    return jax.tree.map(lambda x: x.astype(dtype), layout.unflatten(jnp.asarray(flat)))

  settings = step_lib.StepSettings.from_config(config.distill)
  start, target = params(a.start_epoch), params(a.start_epoch + a.expert_epochs)

  def loss(x, lr):
    value, _ = step_lib.meta_loss(model, settings, x, lr, jnp.asarray(labels), start,
                                  target, {}, jax.random.PRNGKey(0))
    return value

  x, lr = jnp.asarray(images, dtype), jnp.asarray(a.lr_teacher, dtype)
  value, (gx, glr) = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(x, lr)
  return float(value), np.asarray(gx, np.float64), float(glr)


def ours_steps(config, trajectory, images, labels, a, dtype):
  """--steps outer steps of our compiled step (its optimisers: SGD with momentum on the
  images and the lr), each from the same start epoch: (losses, final images)."""
  from dd_jax import models
  from dd_jax.distill import state as state_lib
  from dd_jax.distill import step as step_lib
  from dd_jax.models.torch_layout import TorchLayout
  model = models.from_config(config.model, 10)
  layout = TorchLayout.of(model, images.shape[1:])

  def cast(tree):
    return jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating)
                        else x, tree)

  def params(epoch):
    flat = np.concatenate([np.asarray(t, np.float64).reshape(-1) for t in trajectory[epoch]])
    return cast(layout.unflatten(jnp.asarray(flat)))

  settings = step_lib.StepSettings.from_config(config.distill)
  state = cast(state_lib.create(config.distill, images, labels, 0))
  segment = step_lib.Segment(params(a.start_epoch), params(a.start_epoch + a.expert_epochs))
  step = jax.jit(step_lib.make_step(model, settings))
  losses = []
  for _ in range(a.steps):
    state, metrics = step(state, segment, step_lib.Fixed(batch_stats={}))
    losses.append(float(metrics["loss"]))
  return losses, np.asarray(state.images, np.float64)


def official_steps(utils, reparam, trajectory, images, labels, a, dtype):
  """The same --steps with the official network, unroll and optimisers (its distill.py:
  torch.optim.SGD at lr_img / lr_lr, momentum 0.5)."""
  import torch
  torch_dtype = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
  net = reparam.ReparamModule(utils.get_network("ConvNet", 1, 10, (28, 28), dist=False))
  net = net.to(torch_dtype).train()
  num_params = sum(int(np.prod(p.size())) for p in net.parameters())

  def flat(epoch):
    return torch.cat([torch.as_tensor(np.asarray(t)).reshape(-1) for t in trajectory[epoch]]
                     ).to(torch_dtype)

  start, target = flat(a.start_epoch), flat(a.start_epoch + a.expert_epochs)
  x = torch.tensor(images.transpose(0, 3, 1, 2).copy(), dtype=torch_dtype,
                   requires_grad=True)
  y = torch.as_tensor(labels.astype(np.int64))
  lr = torch.tensor(a.lr_teacher, dtype=torch_dtype, requires_grad=True)
  opt_x = torch.optim.SGD([x], lr=a.lr_img, momentum=0.5)
  opt_lr = torch.optim.SGD([lr], lr=a.lr_lr, momentum=0.5)
  losses = []
  for _ in range(a.steps):
    student = [start.clone().requires_grad_(True)]
    for _ in range(a.syn_steps):
      out = net(x.contiguous(), flat_param=student[-1])
      ce = torch.nn.functional.cross_entropy(out, y)
      grad = torch.autograd.grad(ce, student[-1], create_graph=True)[0]
      student.append(student[-1] - lr * grad)
    loss = (torch.nn.functional.mse_loss(student[-1], target, reduction="sum") / num_params
            / (torch.nn.functional.mse_loss(start, target, reduction="sum") / num_params))
    opt_x.zero_grad()
    opt_lr.zero_grad()
    loss.backward()
    opt_x.step()
    opt_lr.step()
    losses.append(float(loss.detach()))
  return losses, x.detach().numpy().astype(np.float64).transpose(0, 2, 3, 1)


def official(utils, reparam, trajectory, images, labels, a, dtype):
  """The official network and unroll (its distill.py, one outer step, no augmentation,
  the whole set per inner step)."""
  import torch
  torch_dtype = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
  net = reparam.ReparamModule(utils.get_network("ConvNet", 1, 10, (28, 28), dist=False))
  net = net.to(torch_dtype).train()
  num_params = sum(int(np.prod(p.size())) for p in net.parameters())

  def flat(epoch):
    return torch.cat([torch.as_tensor(np.asarray(t)).reshape(-1) for t in trajectory[epoch]]
                     ).to(torch_dtype)

  start, target = flat(a.start_epoch), flat(a.start_epoch + a.expert_epochs)
  x = torch.tensor(images.transpose(0, 3, 1, 2).copy(), dtype=torch_dtype,
                   requires_grad=True)
  y = torch.as_tensor(labels.astype(np.int64))
  lr = torch.tensor(a.lr_teacher, dtype=torch_dtype, requires_grad=True)
  student = [start.clone().requires_grad_(True)]
  for _ in range(a.syn_steps):
    out = net(x.contiguous(), flat_param=student[-1])
    ce = torch.nn.functional.cross_entropy(out, y)
    grad = torch.autograd.grad(ce, student[-1], create_graph=True)[0]
    student.append(student[-1] - lr * grad)
  loss = (torch.nn.functional.mse_loss(student[-1], target, reduction="sum") / num_params
          / (torch.nn.functional.mse_loss(start, target, reduction="sum") / num_params))
  loss.backward()
  gx = x.grad.detach().numpy().astype(np.float64).transpose(0, 2, 3, 1)
  return float(loss.detach()), gx, float(lr.grad)


def relative(a, b) -> float:
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def table(record: dict) -> str:
  """The README's lines from a results file of this script."""
  a, f = record["args"], record["figures"]
  lines = [f"One MTT outer step from the same expert, images and lr (Fashion-MNIST IPC "
           f"{a['ipc']}, N {a['syn_steps']}, M {a['expert_epochs']}, start epoch "
           f"{a['start_epoch']}, no DSA; benchmarks/official_gradient.py), ours against the "
           "official ConvNet and unroll:", "",
           "| precision | loss, ours | loss, official | image gradient, relative "
           "difference | lr gradient, relative difference |", "| --- | --- | --- | --- | --- |"]
  for name in ("float64", "float32"):
    r = f[name]
    lines.append(f"| {name} | {r['loss_ours']:.10f} | {r['loss_official']:.10f} | "
                 f"{r['image_grad_rel_diff']:.1e} | {r['lr_grad_rel_diff']:.1e} |")
  lines += ["", "Each side's own float32 against its float64: image gradient "
            f"{f['ours_float32_vs_float64']['image_grad_rel_diff']:.1e} (ours), "
            f"{f['official_float32_vs_float64']['image_grad_rel_diff']:.1e} (official)."]
  steps = f.get("steps")
  if steps:
    n = len(steps["ours_float64_losses"])
    key = "images_rel_diff {} vs {}"
    lines += ["", f"After {n} outer steps with each side's optimisers (lr_img {a['lr_img']}, "
              "SGD momentum 0.5), the images' relative difference: ours against official "
              f"{steps[key.format('ours_float64', 'official_float64')]:.1e} in float64, "
              f"{steps[key.format('ours_float32', 'official_float32')]:.1e} in float32; "
              "float32 against float64 on one side: "
              f"{steps[key.format('ours_float32', 'ours_float64')]:.1e} (ours), "
              f"{steps[key.format('official_float32', 'official_float64')]:.1e} (official)."]
  return "\n".join(lines)


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--official", default="", help="an MTT checkout")
  p.add_argument("--buffers", default="", help="a folder with replay_buffer_0.pt")
  p.add_argument("--from-results", default="",
                 help="print the table of a results file of this script and stop")
  p.add_argument("--ipc", type=int, default=1)
  p.add_argument("--seed", type=int, default=0, help="the initial images' draw")
  p.add_argument("--train-per-class", type=int, default=1000)
  p.add_argument("--syn-steps", type=int, default=10)
  p.add_argument("--expert-epochs", type=int, default=2)
  p.add_argument("--start-epoch", type=int, default=0)
  p.add_argument("--lr-teacher", type=float, default=0.01)
  p.add_argument("--steps", type=int, default=5,
                 help="outer steps compared with each side's optimisers (0: none)")
  p.add_argument("--lr-img", type=float, default=1000.0)
  p.add_argument("--lr-lr", type=float, default=1e-7)
  p.add_argument("--out", default="", help="also write the figures to this JSON file")
  common.add_smoke(p)
  a = p.parse_args()
  if a.from_results:
    with open(a.from_results) as f:
      print(table(json.load(f)))
    return
  if a.smoke:
    with tempfile.TemporaryDirectory(prefix="official_gradient_smoke_") as root:
      smoke(a, root)
      return study(a, root)
  if not (a.official and a.buffers):
    p.error("--official and --buffers are needed (or --from-results)")
  study(a)


def smoke(a: argparse.Namespace, root: str) -> None:
  """`a` for a --smoke run in `root`: one expert of 3 epochs on the tiny data (ConvNet-3
  at the official width, 128, so an --official checkout's net takes its parameters),
  exported to the official layout; N 2, 2 outer steps."""
  common.start_smoke(root, ("--config.model.width=128",))
  common.run_module(["dd_jax.experts", "--config=configs/fashion_mnist_mtt.py",
                     f"--workdir={root}/experts_run", f"--config.expert.dir={root}/experts",
                     "--config.expert.num_experts=1", "--config.expert.epochs=3"],
                    os.path.join(root, "experts.log"))
  from dd_jax import interop
  interop.export_experts(os.path.join(root, "experts"), os.path.join(root, "buffers"))
  a.buffers, a.train_per_class, a.syn_steps, a.steps = f"{root}/buffers", 0, 2, 2
  if not a.official:
    print("official side skipped: no --official checkout given", flush=True)


def study(a: argparse.Namespace, smoke_root: str = "") -> None:
  """The figures of `a` (the official side only with a.official), printed and written to
  a.out."""
  import torch
  from configs import fashion_mnist_mtt
  from dd_jax.data import pipeline
  from dd_jax.distill import state as state_lib
  config = fashion_mnist_mtt.get_config(f"ipc={a.ipc}")
  if smoke_root:
    config = common.smoke_config(config, smoke_root)
    config.model.width = 128
  config.data.train_per_class = a.train_per_class
  with config.unlocked():
    config.distill.update(syn_steps=a.syn_steps, expert_epochs=a.expert_epochs,
                          batch_syn=0, dsa_strategy="none", remat=False, lr_img=a.lr_img,
                          lr_lr=a.lr_lr, lr_teacher=a.lr_teacher)
  prepared = pipeline.prepare(config.data)
  images, labels = state_lib.initial_images(prepared.x_train, prepared.y_train,
                                            prepared.num_classes, a.ipc, "real", a.seed)
  trajectory = torch.load(os.path.join(a.buffers, "replay_buffer_0.pt"),
                          weights_only=True)[0]
  trajectory = [[t.numpy() for t in epoch] for epoch in trajectory]
  utils = eval_parity.import_official(a.official) if a.official else None
  if utils is None:
    figures = {}
    for dtype in (np.float64, np.float32):
      loss, _, lr_grad = ours(config, trajectory, images, labels, a, dtype)
      losses = ours_steps(config, trajectory, images, labels, a, dtype)[0] if a.steps else []
      figures[np.dtype(dtype).name] = {"loss_ours": loss, "lr_grad_ours": lr_grad,
                                       "step_losses_ours": losses}
    print(json.dumps(figures, indent=1))
    return
  import reparam_module   # the checkout's, on sys.path from import_official

  figures = {}
  results = {}
  for dtype in (np.float64, np.float32):
    name = np.dtype(dtype).name
    with eval_parity.seeded_get_network(utils, 0):
      results[name] = (ours(config, trajectory, images, labels, a, dtype),
                       official(utils, reparam_module, trajectory, images, labels, a, dtype))
    (l_o, gx_o, glr_o), (l_t, gx_t, glr_t) = results[name]
    figures[name] = {"loss_ours": l_o, "loss_official": l_t,
                     "image_grad_rel_diff": relative(gx_o, gx_t),
                     "lr_grad_ours": glr_o, "lr_grad_official": glr_t,
                     "lr_grad_rel_diff": relative(glr_o, glr_t)}
  for side, i in (("ours", 0), ("official", 1)):
    figures[f"{side}_float32_vs_float64"] = {
        "image_grad_rel_diff": relative(results["float32"][i][1], results["float64"][i][1]),
        "lr_grad_rel_diff": relative(results["float32"][i][2], results["float64"][i][2])}
  if a.steps:
    runs = {}
    for dtype in (np.float64, np.float32):
      name = np.dtype(dtype).name
      with eval_parity.seeded_get_network(utils, 0):
        runs["ours", name] = ours_steps(config, trajectory, images, labels, a, dtype)
        runs["official", name] = official_steps(utils, reparam_module, trajectory, images,
                                                labels, a, dtype)
    figures["steps"] = {f"{side}_{name}_losses": losses
                        for (side, name), (losses, _) in runs.items()}
    for one, other in ((("ours", "float64"), ("official", "float64")),
                       (("ours", "float32"), ("official", "float32")),
                       (("ours", "float32"), ("ours", "float64")),
                       (("official", "float32"), ("official", "float64"))):
      figures["steps"][f"images_rel_diff {'_'.join(one)} vs {'_'.join(other)}"] = relative(
          runs[one][1], runs[other][1])
  print(json.dumps(figures, indent=1))
  if a.out:
    with open(a.out, "w") as f:
      json.dump({"args": vars(a), "figures": figures}, f, indent=1)
  if smoke_root:
    print(table({"args": vars(a), "figures": figures}))


if __name__ == "__main__":
  main()
