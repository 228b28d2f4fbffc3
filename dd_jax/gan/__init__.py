"""A GAN prior for distillation: a StyleGAN-XL generator in JAX (ops.py), its converter
and layer spec, and the latent parameterisations of GLaD and H-PD."""
