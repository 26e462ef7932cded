from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class CondGenConfig:
    classes: int = 2
    noise_size: int = 16
    width: int = 16
    image_size: int = 32


class CondGen(nn.Module):
    def __init__(self, config: CondGenConfig):
        super().__init__()
        self.noise_size, self.num_classes = config.noise_size, config.classes
        self.embed = nn.Embedding(config.classes, config.noise_size)
        w, s = config.width, config.image_size // 4
        self.fc = nn.Linear(2 * config.noise_size, w * 2 * s * s)
        self.net = nn.Sequential(
            nn.Unflatten(1, (w * 2, s, s)), nn.ReLU(),
            nn.ConvTranspose2d(w * 2, w, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(w, 3, 4, 2, 1), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(torch.cat([z, self.embed(labels)], dim=1)))


@dataclass(frozen=True)
class CondDiscConfig:
    classes: int = 2
    width: int = 16


class CondDisc(nn.Module):
    """Projection discriminator: score = psi(phi(x)) + <embed(y), phi(x)>."""

    def __init__(self, config: CondDiscConfig):
        super().__init__()
        w, self.num_classes = config.width, config.classes
        self.features = nn.Sequential(
            nn.Conv2d(3, w, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(w, 2 * w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.linear = nn.Linear(2 * w, 1)
        self.embed = nn.Embedding(config.classes, 2 * w)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        return self.linear(h).squeeze(1) + (self.embed(labels) * h).sum(1)


@dataclass(frozen=True)
class SketchGenConfig:
    width: int = 16


class SketchGen(nn.Module):
    def __init__(self, config: SketchGenConfig):
        super().__init__()
        w = config.width
        self.net = nn.Sequential(
            nn.Conv2d(3, w, 3, 1, 1), nn.ReLU(), nn.Conv2d(w, w, 3, 1, 1), nn.ReLU(), nn.Conv2d(w, 3, 3, 1, 1), nn.Tanh()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@dataclass(frozen=True)
class PairDiscConfig:
    width: int = 16


class PairDisc(nn.Module):
    """Sees input and output together (6 channels) and scores patches."""

    def __init__(self, config: PairDiscConfig):
        super().__init__()
        w, self.in_channels = config.width, 6
        self.net = nn.Sequential(nn.Conv2d(6, w, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(w, 1, 4, 1, 1))

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        return self.net(pair)
