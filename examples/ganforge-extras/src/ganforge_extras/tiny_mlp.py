"""A tiny fully connected noise-to-image generator for quick experiments.

Four matrix multiplications per batch: at the sizes it is meant for (16-32 px) it is about as
fast as the small DCGAN generator of ``dcgan-shapes`` (it has more parameters, ~3.8 M at the
defaults, but no convolutions), so a recipe with it trains in minutes on a CPU. It has no spatial
prior, so expect noisier samples and less stable training than with DCGAN: it is a baseline and
a generator for quick experiments, not a quality one.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn


@dataclass(frozen=True)
class TinyMLPConfig:
    image_size: int = 32  # output images are image_size x image_size (inherits data.image_size)
    noise_size: int = 64  # length of the input noise vector
    hidden: int = 256  # width of the first hidden layer (the next two have 2x and 4x as many units)

    def __post_init__(self):
        for key in ("image_size", "noise_size", "hidden"):
            value = getattr(self, key)
            if value <= 0:
                raise ValueError(f"{key} must be a positive integer, got {value}")


class TinyMLPGenerator(nn.Module):
    """Noise ``[B, noise_size]`` -> images ``[B, 3, image_size, image_size]`` in [-1, 1].

    Three ``Linear -> BatchNorm -> LeakyReLU(0.2)`` blocks of ``hidden``, ``2 * hidden`` and
    ``4 * hidden`` units (the classic widening MLP GAN generator), then ``Linear -> tanh`` to
    ``3 * image_size**2`` values reshaped to an image. BatchNorm keeps the features spread across
    the batch, which noticeably reduces mode collapse against a convolutional discriminator.
    Noise shaped ``[B, noise_size, 1, 1]`` (as convolutional generators take it) is accepted too.
    Like any BatchNorm network it needs batches of at least 2 images in training mode.
    """

    def __init__(self, config: TinyMLPConfig | None = None):
        super().__init__()
        self.config = config or TinyMLPConfig()
        self.noise_size = self.config.noise_size
        self.image_size = self.config.image_size
        hidden = self.config.hidden
        widths = [self.noise_size, hidden, 2 * hidden, 4 * hidden]
        layers: list[nn.Module] = []
        for n_in, n_out in zip(widths, widths[1:]):
            # No bias before BatchNorm: its shift would be cancelled by the normalisation.
            layers += [nn.Linear(n_in, n_out, bias=False), nn.BatchNorm1d(n_out), nn.LeakyReLU(0.2, inplace=True)]
        layers += [nn.Linear(widths[-1], 3 * self.image_size**2), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        z = z.flatten(1)
        if z.shape[1] != self.noise_size:
            raise ValueError(f"expected noise of size {self.noise_size}, got shape {tuple(z.shape)}")
        return self.net(z).view(z.shape[0], 3, self.image_size, self.image_size)


def build_tiny_mlp(config: TinyMLPConfig | None = None) -> TinyMLPGenerator:
    return TinyMLPGenerator(config)
