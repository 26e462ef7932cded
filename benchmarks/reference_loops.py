"""Plain-PyTorch re-implementations of two reference GAN training loops, written from their
documented settings (no code copied) for the side-by-side speed benchmark (``python -m benchmarks.speed compare``):

- ``dcgan``: the pytorch/examples ``dcgan/main.py`` loop: DCGAN (ngf = ndf = 64, nz = 100,
  BatchNorm, no conv biases, Sigmoid at the end of D), ``nn.BCELoss``, Adam 2e-4 (0.5, 0.999),
  D on real then on ``fake.detach()``, then G with label 1 on the same fake; PNGs decoded by an
  ImageFolder-style dataset with Resize / CenterCrop / ToTensor / Normalize every epoch.
- ``cyclegan``: the junyanz/pytorch-CycleGAN-and-pix2pix ``train.py`` loop: ResNet generator
  (9 blocks, width 64, reflection padding, InstanceNorm without affine, conv biases,
  ConvTranspose upsampling), 70x70-style PatchGAN (3 layers, width 64, a stride-1 4x4 conv before
  the 4x4 head), LSGAN (MSE), image pools of 50, cycle 10, identity 0.5 (x 10), Adam 2e-4
  (0.5, 0.999), batch 1, D frozen during the G update, D loss halved; unaligned A/B data decoded
  per item with Resize (bicubic) + horizontal flip.

Not a harness: ``python -m benchmarks.speed compare`` times these loops beside ganforge, and
``python -m benchmarks.speed reference dcgan --steps 40 --data ../shared/data --out /tmp/ref`` trains one
for a fixed number of steps and saves what the reference saves at the end of an epoch (the networks;
a grid of images), for the whole-command wall time.
"""

from __future__ import annotations

import random
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

# --------------------------------------------------------------------------- DCGAN networks


def dcgan_generator(nz: int = 100, ngf: int = 64) -> nn.Sequential:
    """nz x 1 x 1 -> 3 x 64 x 64; transposed convs without bias, BatchNorm + ReLU, Tanh."""
    chans = [ngf * 8, ngf * 4, ngf * 2, ngf]
    layers: list[nn.Module] = [nn.ConvTranspose2d(nz, chans[0], 4, 1, 0, bias=False), nn.BatchNorm2d(chans[0]), nn.ReLU(True)]
    for c_in, c_out in zip(chans, chans[1:]):
        layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
    layers += [nn.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def dcgan_discriminator(ndf: int = 64) -> nn.Sequential:
    """3 x 64 x 64 -> a probability per image; convs without bias, BatchNorm after all but the first."""
    chans = [ndf, ndf * 2, ndf * 4, ndf * 8]
    layers: list[nn.Module] = [nn.Conv2d(3, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
    for c_in, c_out in zip(chans, chans[1:]):
        layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, inplace=True)]
    layers += [nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid()]
    return nn.Sequential(*layers)


def normal_init_(module: nn.Module) -> None:
    """Both references' init: conv weights ~ N(0, 0.02), BatchNorm weights ~ N(1, 0.02), biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


# --------------------------------------------------------------------------- CycleGAN networks


def _instance_norm(ch: int) -> nn.Module:
    return nn.InstanceNorm2d(ch, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    """x + (reflect-pad, conv3x3, IN, ReLU, reflect-pad, conv3x3, IN)(x)."""

    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), _instance_norm(ch), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), _instance_norm(ch),
        )

    def forward(self, x):
        return x + self.body(x)


def resnet_generator(ngf: int = 64, n_blocks: int = 9) -> nn.Sequential:
    """7x7 conv, two stride-2 3x3 convs (zero padding), ``n_blocks`` residual blocks, two
    transposed convs, 7x7 conv + Tanh. Conv biases on (InstanceNorm has no affine parameters)."""
    layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), _instance_norm(ngf), nn.ReLU(True)]
    ch = ngf
    for _ in range(2):
        layers += [nn.Conv2d(ch, ch * 2, 3, 2, 1), _instance_norm(ch * 2), nn.ReLU(True)]
        ch *= 2
    layers += [ResnetBlock(ch) for _ in range(n_blocks)]
    for _ in range(2):
        layers += [nn.ConvTranspose2d(ch, ch // 2, 3, 2, 1, output_padding=1), _instance_norm(ch // 2), nn.ReLU(True)]
        ch //= 2
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, 3, 7), nn.Tanh()]
    return nn.Sequential(*layers)


def patchgan(ndf: int = 64, n_layers: int = 3) -> nn.Sequential:
    """4x4 convs: stride 2 to ``ndf``, ``n_layers - 1`` more stride-2 ones doubling the channels
    (cap 8 * ndf), a stride-1 one, then a stride-1 one to a single channel (patch logits)."""
    layers: list[nn.Module] = [nn.Conv2d(3, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    mult = 1
    for n in range(1, n_layers + 1):
        prev, mult = mult, min(2**n, 8)
        stride = 2 if n < n_layers else 1
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1), _instance_norm(ndf * mult), nn.LeakyReLU(0.2, True)]
    layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
    return nn.Sequential(*layers)


class ImagePool:
    """History of ``size`` generated images; once full, each query swaps a new image for a random
    stored one with probability 0.5 (Python's ``random``)."""

    def __init__(self, size: int = 50):
        self.size, self.images = size, []

    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        out = []
        for img in fakes.detach():
            img = img.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(img)
                out.append(img)
            elif random.random() > 0.5:
                i = random.randrange(self.size)
                out.append(self.images[i].clone())
                self.images[i] = img
            else:
                out.append(img)
        return torch.cat(out)


# --------------------------------------------------------------------------- data


def _normalize():
    return transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def png_files(folder: Path) -> list[Path]:
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not files:
        raise SystemExit(f"no images in {folder}")
    return files


def load_rgb(path: Path) -> Image.Image:
    with Image.open(path) as img:
        return img.convert("RGB")


class ImageFiles(Dataset):
    """ImageFolder-style: decodes (and transforms) a file every time an item is read."""

    def __init__(self, folder: Path, transform):
        self.files, self.transform = png_files(folder), transform

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        return self.transform(load_rgb(self.files[i]))


class Unaligned(Dataset):
    """Unpaired A/B items: A in order (the loader shuffles), B drawn at random; length max(|A|, |B|)."""

    def __init__(self, folder_a: Path, folder_b: Path, transform):
        self.a, self.b, self.transform = png_files(folder_a), png_files(folder_b), transform

    def __len__(self):
        return max(len(self.a), len(self.b))

    def __getitem__(self, i):
        b = self.b[random.randrange(len(self.b))]
        return self.transform(load_rgb(self.a[i % len(self.a)])), self.transform(load_rgb(b))


class Endless:
    """Batches from a DataLoader, epoch after epoch (a new shuffle each epoch)."""

    def __init__(self, loader: DataLoader):
        self.loader, self.it = loader, iter(())

    def next(self):
        try:
            return next(self.it)
        except StopIteration:
            self.it = iter(self.loader)
            return next(self.it)


# --------------------------------------------------------------------------- training loops


def _autocast(bf16: bool):
    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()


def _adam(params):
    return torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999))


class DCGANLoop:
    """One ``step()`` = one iteration of the reference loop; returns the batch's image count."""

    name = "dcgan"

    def __init__(self, data_root: Path, image_size: int = 64, batch: int = 16, bf16: bool = False, workers: int = 0, seed: int = 0):
        if image_size != 64:
            raise ValueError("the reference DCGAN is defined at 64x64 only")
        torch.manual_seed(seed)
        random.seed(seed)
        self.nz, self.bf16 = 100, bf16
        self.G, self.D = dcgan_generator(self.nz, 64), dcgan_discriminator(64)
        self.G.apply(normal_init_)
        self.D.apply(normal_init_)
        self.criterion = nn.BCELoss()
        self.opt_g, self.opt_d = _adam(self.G.parameters()), _adam(self.D.parameters())
        tf = transforms.Compose([transforms.Resize(image_size), transforms.CenterCrop(image_size), transforms.ToTensor(), _normalize()])
        folder = Path(data_root) / "grumpify-cats" / "grumpy"
        self.data = Endless(DataLoader(ImageFiles(folder, tf), batch_size=batch, shuffle=True, num_workers=workers))
        self.last: tuple[torch.Tensor, ...] = ()

    def nets(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def _bce(self, out: torch.Tensor, value: float) -> torch.Tensor:
        out = out.float().view(-1)  # BCELoss is computed in fp32, outside autocast
        return self.criterion(out, torch.full_like(out, value))

    def step(self) -> int:
        real = self.data.next()
        b = real.size(0)
        self.D.zero_grad()
        with _autocast(self.bf16):
            out_real = self.D(real)
        err_real = self._bce(out_real, 1.0)
        err_real.backward()
        noise = torch.randn(b, self.nz, 1, 1)
        with _autocast(self.bf16):
            fake = self.G(noise)
            out_fake = self.D(fake.detach())
        err_fake = self._bce(out_fake, 0.0)
        err_fake.backward()
        self.opt_d.step()
        self.G.zero_grad()
        with _autocast(self.bf16):
            out_g = self.D(fake)
        err_g = self._bce(out_g, 1.0)
        err_g.backward()
        self.opt_g.step()
        self.losses = ((err_real + err_fake).item(), err_g.item())  # the script prints both every step
        self.last = (fake.detach(),)
        return b


class CycleGANLoop:
    """One ``step()`` = one ``optimize_parameters()`` of the reference; returns images per domain."""

    name = "cyclegan"

    def __init__(self, data_root: Path, image_size: int = 64, batch: int = 1, bf16: bool = False, workers: int = 0, seed: int = 0,
                 n_blocks: int = 9):
        torch.manual_seed(seed)
        random.seed(seed)
        self.bf16, self.lam_a, self.lam_b, self.lam_idt = bf16, 10.0, 10.0, 0.5
        self.G_A, self.G_B = resnet_generator(64, n_blocks), resnet_generator(64, n_blocks)
        self.D_A, self.D_B = patchgan(64, 3), patchgan(64, 3)
        for net in self.nets().values():
            net.apply(normal_init_)
        self.opt_g = _adam(list(self.G_A.parameters()) + list(self.G_B.parameters()))
        self.opt_d = _adam(list(self.D_A.parameters()) + list(self.D_B.parameters()))
        self.pool_a, self.pool_b = ImagePool(50), ImagePool(50)  # fakes of A, fakes of B
        tf = transforms.Compose([
            transforms.Resize((image_size, image_size), transforms.InterpolationMode.BICUBIC),
            transforms.RandomHorizontalFlip(), transforms.ToTensor(), _normalize(),
        ])
        root = Path(data_root) / "grumpify-cats"
        dataset = Unaligned(root / "russian_blue", root / "grumpy", tf)  # A = Russian Blue, B = grumpy, as ganforge
        self.data = Endless(DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers))
        self.last: tuple[torch.Tensor, ...] = ()

    def nets(self) -> dict[str, nn.Module]:
        return {"G_A": self.G_A, "G_B": self.G_B, "D_A": self.D_A, "D_B": self.D_B}

    @staticmethod
    def _mse(pred: torch.Tensor, value: float) -> torch.Tensor:
        pred = pred.float()
        return F.mse_loss(pred, torch.full_like(pred, value))

    def _set_d_grad(self, on: bool) -> None:
        for p in list(self.D_A.parameters()) + list(self.D_B.parameters()):
            p.requires_grad_(on)

    def _d_loss(self, D: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        with _autocast(self.bf16):
            pred_real, pred_fake = D(real), D(fake.detach())
        return (self._mse(pred_real, 1.0) + self._mse(pred_fake, 0.0)) * 0.5

    def step(self) -> int:
        real_a, real_b = self.data.next()
        with _autocast(self.bf16):  # forward(): translations and reconstructions
            fake_b = self.G_A(real_a)
            rec_a = self.G_B(fake_b)
            fake_a = self.G_B(real_b)
            rec_b = self.G_A(fake_a)
        # G_A and G_B, with both discriminators frozen
        self._set_d_grad(False)
        self.opt_g.zero_grad()
        with _autocast(self.bf16):
            idt_a, idt_b = self.G_A(real_b), self.G_B(real_a)
            pred_fake_b, pred_fake_a = self.D_A(fake_b), self.D_B(fake_a)
        loss_idt = (F.l1_loss(idt_a.float(), real_b) * self.lam_b + F.l1_loss(idt_b.float(), real_a) * self.lam_a) * self.lam_idt
        loss_gan = self._mse(pred_fake_b, 1.0) + self._mse(pred_fake_a, 1.0)
        loss_cycle = F.l1_loss(rec_a.float(), real_a) * self.lam_a + F.l1_loss(rec_b.float(), real_b) * self.lam_b
        loss_g = loss_gan + loss_cycle + loss_idt
        loss_g.backward()
        self.opt_g.step()
        # D_A (real B vs pooled fake B) and D_B (real A vs pooled fake A)
        self._set_d_grad(True)
        self.opt_d.zero_grad()
        self._d_loss(self.D_A, real_b, self.pool_b.query(fake_b)).backward()
        self._d_loss(self.D_B, real_a, self.pool_a.query(fake_a)).backward()
        self.opt_d.step()
        self.last = (real_a, fake_b.detach(), rec_a.detach(), real_b, fake_a.detach(), rec_b.detach())
        return real_a.size(0)


LOOPS = {"dcgan": DCGANLoop, "cyclegan": CycleGANLoop}


def make_loop(kind: str, data_root: Path, image_size: int, bf16: bool = False, workers: int = 0):
    if kind not in LOOPS:
        raise ValueError(f"unknown reference loop {kind!r}; choose one of {', '.join(LOOPS)}")
    return LOOPS[kind](data_root, image_size=image_size, bf16=bf16, workers=workers)


def save_outputs(loop, out: Path) -> None:
    """What the reference writes at an epoch end: the networks, and a grid of the last images."""
    from torchvision.utils import save_image

    out.mkdir(parents=True, exist_ok=True)
    for name, net in loop.nets().items():
        torch.save(net.state_dict(), out / f"net_{name}.pth")
    images = torch.cat([t.float() for t in loop.last])
    save_image(images, out / "samples.png", normalize=True, nrow=8)
