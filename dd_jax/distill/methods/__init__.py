"""Every distillation method and parameterisation, by the config's name.

  distill.method            METHODS[name](ctx, parameterization): distill/methods/base.py
  distill.parameterization  PARAMETERIZATIONS[name](ctx)

Adding a method is one module here (a `base.Method` subclass) and one line below;
docs/architecture.md shows a minimal one.
"""
from dd_jax.distill.methods import backbones, base, idc, latents, mtt

METHODS: dict[str, type[base.Method]] = {
    "mtt": mtt.TrajectoryMatching,
    "dc": backbones.GradientMatching,
    "dm": backbones.DistributionMatching,
    "idc": idc.IDC,
}

PARAMETERIZATIONS: dict[str, type[base.Parameterization]] = {
    "pixels": base.Parameterization,
    "glad": latents.Latents,
    "hpd": latents.ProgressiveLatents,   # GLaD's latents, space by space (distill/hpd.py)
}


def sections_unused(config_dict: dict) -> list[str]:
  """Config sections owned by a method or parameterisation the run does not use (left
  out of its identity, so runs begun before they existed resume)."""
  d = config_dict.get("distill", {})
  used = (METHODS.get(d.get("method")), PARAMETERIZATIONS.get(d.get("parameterization")))
  owners = list(METHODS.values()) + list(PARAMETERIZATIONS.values())
  return sorted({s for owner in owners if owner not in used for s in owner.sections})


def method_summary(config: dict) -> str:
  """The method switches a config turns on, in words."""
  d = config.get("distill", {})
  method = METHODS.get(d.get("method"))
  parts = [method.description if method else str(d.get("method"))]
  param = PARAMETERIZATIONS.get(d.get("parameterization"))
  if param is not None and param.latent:
    parts.append(param.description)
  if d.get("soft_labels"):
    parts.append("DATM soft labels")
  if d.get("param_mask", "none") != "none":
    parts.append(f"PAD parameter mask ({d['param_mask']}, {d.get('param_mask_ratio')})")
  if config.get("expert", {}).get("data_schedule", "none") != "none":
    parts.append("PAD data scheduler for experts")
  if config.get("expert", {}).get("gp_weight", 0):
    parts.append("AST smooth experts")
  if d.get("pix_init") == "kmeans":
    parts.append("AST representative init")
  if d.get("balance_loss"):
    parts.append("AST balanced inner loss")
  if d.get("intermediate", "none") != "none":
    parts.append(f"AST intermediate matching ({d['intermediate']})")
  if d.get("perturb_rho", 0):
    parts.append(f"AST weight perturbation (rho {d['perturb_rho']})")
  subsets = config.get("seqmatch", {}).get("subsets")
  if subsets:
    parts.append(f"SeqMatch subsets {list(subsets)}")
  return " + ".join(parts)
