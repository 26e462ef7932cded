"""Building blocks every family may share: layers, config checks and latent helpers.

Plugins import them from here (``from ganforge.nn import conv2d, slerp``), never from each other.
"""

from ganforge.nn.blocks import NORMS, Norm, conv2d, dcgan_init_, discriminator_trunk, make_norm
from ganforge.nn.checks import check_choice, check_int
from ganforge.nn.latent import grid_columns, latent_loop, slerp

__all__ = ["NORMS", "Norm", "conv2d", "dcgan_init_", "discriminator_trunk", "make_norm", "check_choice", "check_int",
           "grid_columns", "latent_loop", "slerp"]
