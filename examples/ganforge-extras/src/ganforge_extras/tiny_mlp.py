"""A tiny fully connected noise-to-image generator for quick experiments.

Far smaller and faster than a convolutional generator at the sizes it is meant for (16-32 px),
so a recipe with it trains in a few minutes on a CPU. It has no spatial prior, so expect blurrier
samples than from DCGAN; it is a baseline and a smoke-test generator, not a quality one.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn


@dataclass(frozen=True)
class TinyMLPConfig:
    image_size: int = 32  # output images are image_size x image_size (inherits data.image_size)
    noise_size: int = 64  # length of the input noise vector
    hidden: int = 256  # width of the two hidden layers

    def __post_init__(self):
        for key in ("image_size", "noise_size", "hidden"):
            value = getattr(self, key)
            if value <= 0:
                raise ValueError(f"{key} must be a positive integer, got {value}")


class TinyMLPGenerator(nn.Module):
    """Noise ``[B, noise_size]`` -> images ``[B, 3, image_size, image_size]`` in [-1, 1].

    ``Linear -> BatchNorm -> ReLU`` twice (``hidden`` units), then ``Linear -> tanh`` to
    ``3 * image_size**2`` values reshaped to an image. Noise shaped ``[B, noise_size, 1, 1]``
    (as convolutional generators take it) is accepted too. Like any BatchNorm network it needs
    batches of at least 2 images in training mode.
    """

    def __init__(self, config: TinyMLPConfig | None = None):
        super().__init__()
        self.config = config or TinyMLPConfig()
        self.noise_size = self.config.noise_size
        self.image_size = self.config.image_size
        hidden, out = self.config.hidden, 3 * self.config.image_size**2
        self.net = nn.Sequential(
            nn.Linear(self.noise_size, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, out),
            nn.Tanh(),
        )

    def forward(self, z: Tensor) -> Tensor:
        z = z.flatten(1)
        if z.shape[1] != self.noise_size:
            raise ValueError(f"expected noise of size {self.noise_size}, got shape {tuple(z.shape)}")
        return self.net(z).view(z.shape[0], 3, self.image_size, self.image_size)


def build_tiny_mlp(config: TinyMLPConfig | None = None) -> TinyMLPGenerator:
    return TinyMLPGenerator(config)
