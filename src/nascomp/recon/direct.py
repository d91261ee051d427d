"""Direct input optimisation: calibration images optimised pixel by pixel against the frozen teacher (the ZeroQ /
DeepInversion family), an image source beside the generators.

Each batch of images X (B x C x H x W, in the model's normalised input space) starts as Gaussian noise N(0, 1)
with balanced labels y, and takes ``steps`` Adam steps on the generators' terms (GDFQ eq. 5 / AutoReCon's L_r,
:mod:`.objective`) with the batch-norm term dominant:

    L(X) = CE(T(J(X)), y) + lambda_d * BNS(J(X)),   lambda_d = 10,

    J(X) = flip_f(roll(X, (dy, dx))),  dy, dx ~ U{-jitter..jitter},  f ~ Bernoulli(1/2)   (drawn anew each step)

where T is the frozen teacher, BNS the batch-norm statistics distance of :mod:`.bns`, ``roll`` a circular shift
of the whole batch and ``flip`` a horizontal mirror (DeepInversion's augmentation: the images must match the
statistics wherever they are shifted, which keeps them from fitting pixel-exact adversarial patterns). lambda_d is
100 times the generators' 0.1: free pixels fit the CE term adversarially at once (CE < 0.01 within tens of steps),
so the statistics must carry the objective, as in ZeroQ (BNS only) and DeepInversion (BN weight 100 against CE 1).
Measured on the CIFAR-10 ResNet-20, 100 steps at batch 64: final BNS 8.7 / 1.2 / 0.93 for lambda_d 0.1 / 1 / 10
(the GDFQ generator's calibration images: 1.5); on the demo teacher lambda_d 0.1 even raised BNS above the noise it
started from. A data-free choice: no image was seen. The lr
follows a cosine from ``lr`` to 0 over the steps. The images kept are those after the last step, with the teacher's
logits on them (no jitter) as the distillation targets.

Papers and the settings taken from their public code:

- ZeroQ (Cai et al., CVPR 2020, "ZeroQ: A Novel Zero Shot Quantization Framework"), ``distill_data.py``: Gaussian
  initial images, Adam lr 0.5 with ReduceLROnPlateau, 500 iterations per batch, BN statistics only (no labels).
- DeepInversion (Yin et al., CVPR 2020, "Dreaming to Distill"), ``cifar10/deepinversion_cifar10.py``: Gaussian
  initial images, Adam lr 0.1, 2,000 iterations at batch 256, random circular shifts of up to 2 pixels
  (``torch.roll``) each iteration, CE on balanced target labels plus BN-statistic and total-variation priors;
  its ImageNet code adds a random horizontal flip per iteration and a cosine lr.

Taken here: Gaussian start, Adam with a cosine decay, jitter 2 pixels and flips, balanced labels; lr 0.25 (between
DeepInversion's 0.1 and ZeroQ's 0.5: on the ResNet-20 at 200 steps, batch 64, lambda_d 0.1, it ended at BNS 2.2
where 0.1 ended at 3.1 - again BNS only, no image seen). Not taken: the total-variation and L2 priors and ZeroQ's plateau schedule (one objective for
every source), the "best iterate" selection (the last one is kept). Budgets are far below the papers' on a CPU:
say the steps with every figure.

The same steps also *refine* a trained generator's images (``--refine-steps N``): each batch of G(z, y) starts
from the generator's images and labels instead of noise, and takes N steps of L(X) (Genie, Jeon et al. CVPR 2023,
optimises its latents and generator per batch toward the same statistics; here the pixels themselves move, as in
DeepInversion). The generator's images start near the statistics (BNS about 1.5 on the ResNet-20), so a few steps
at a small lr finish what its shared weights could not fit for each batch.

``--generator genie`` optimises the same objective with the same steps, but each batch is parameterised as
Genie-D's latents plus a small per-batch generator, X = G_b(z_b) (:mod:`.genie`), instead of free pixels.

Every random draw (initial images, latents, generator weights, shifts, flips) is made by the CPU generator, so one
seed gives the same images on a CPU and a GPU (up to the device's arithmetic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .bns import BNStatistics
from .generators import ImageSource
from .genie import LatentBatch

# the optimised image sources (``--generator``) and how each parameterises a batch, with its default Adam lr
PARAMETERISATIONS = {"pixels": 0.25, "latent": 0.03}
OPTIMISED_SOURCES = {"direct": "pixels", "genie": "latent"}


@dataclass(frozen=True)
class DirectSettings:
    steps: int = 200  # Adam steps per batch of images
    lr: float | None = None  # of the pixels or of the latents (the generator's: a tenth); cosine to 0 over the steps;
    # None: the parameterisation's default (PARAMETERISATIONS)
    parameterisation: str = "pixels"  # pixels (ZeroQ / DeepInversion) | latent (Genie-D: X = G_b(z_b), .genie)
    jitter: int = 2  # largest random circular shift in pixels (each axis); 0: none
    flip: bool = True  # random horizontal flip of the batch each step
    bns_weight: float = 10.0  # lambda_d (the generators use 0.1; see the module docstring)

    def __post_init__(self) -> None:
        if self.parameterisation not in PARAMETERISATIONS:
            raise ValueError(f"unknown parameterisation {self.parameterisation!r}; choose "
                             f"{' or '.join(PARAMETERISATIONS)}")
        if self.lr is None:
            object.__setattr__(self, "lr", PARAMETERISATIONS[self.parameterisation])


class DirectImages(ImageSource):
    """``--generator direct`` or ``genie``: a placeholder source with nothing to train; the images are optimised
    by :class:`DirectOptimizer` (a stage of the DFQ run), not drawn from G(z, y)."""

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("direct images are optimised batch by batch (DirectOptimizer), not drawn from a generator")


class PixelBatch(nn.Module):
    """One batch of images optimised pixel by pixel (ZeroQ, DeepInversion): ``forward()`` is X itself."""

    def __init__(self, images: torch.Tensor):
        super().__init__()
        self.images = nn.Parameter(images)

    def forward(self) -> torch.Tensor:
        return self.images

    def param_groups(self, lr: float) -> list[dict]:
        return [{"params": [self.images], "lr": lr}]


def balanced_labels(count: int, num_classes: int, start: int = 0) -> torch.Tensor:
    """Labels ``start, start + 1, ...`` modulo the classes (DeepInversion's columns of every class)."""
    return (torch.arange(count) + start) % num_classes


def jitter_flip(images: torch.Tensor, jitter: int, flip: bool) -> torch.Tensor:
    """``J(X)``: one random circular shift of up to ``jitter`` pixels per axis and, half the time, a horizontal
    flip, the same for the whole batch (CPU random draws)."""
    if jitter > 0:
        dy, dx = torch.randint(-jitter, jitter + 1, (2,)).tolist()
        if dy or dx:
            images = torch.roll(images, shifts=(dy, dx), dims=(2, 3))
    if flip and bool(torch.rand(()) < 0.5):
        images = torch.flip(images, dims=(3,))
    return images


class DirectOptimizer:
    """Optimises one batch of images at a time (free pixels or Genie-D latents, ``settings.parameterisation``);
    :meth:`state_dict` / :meth:`load_state_dict` hold the batch in progress (its parameters, labels, Adam state,
    step), so an interrupted run resumes inside a batch."""

    def __init__(self, teacher: nn.Module, bns: BNStatistics, image_shape: tuple[int, int, int], num_classes: int,
                 settings: DirectSettings, device: torch.device | str = "cpu"):
        self.teacher, self.bns, self.settings, self.device = teacher, bns, settings, device
        self.image_shape, self.num_classes = tuple(image_shape), num_classes
        self.batch: PixelBatch | LatentBatch | None = None
        self.labels: torch.Tensor | None = None
        self.optimizer: torch.optim.Adam | None = None
        self.base_lrs: list[float] = []
        self.step = 0

    def start(self, batch_size: int, first_label: int = 0, images: torch.Tensor | None = None,
              labels: torch.Tensor | None = None) -> None:
        """A new batch with balanced labels from ``first_label``: Gaussian images N(0, 1), or fresh latents and
        generator (``latent``); or, to refine a generator's batch, ``images`` and their ``labels`` as the
        starting pixels."""
        if images is None:
            batch: PixelBatch | LatentBatch = (LatentBatch(batch_size, self.image_shape)
                                               if self.settings.parameterisation == "latent"
                                               else PixelBatch(torch.randn(batch_size, *self.image_shape)))
            labels = balanced_labels(batch_size, self.num_classes, first_label)
        elif self.settings.parameterisation != "pixels":
            raise ValueError("only a pixel batch starts from given images")
        elif labels is None or len(labels) != len(images):
            raise ValueError("refining images needs one label per image")
        else:
            batch = PixelBatch(images.detach().clone())
        self._use(batch.to(self.device), labels.detach().clone().to(self.device))

    def _use(self, batch: PixelBatch | LatentBatch, labels: torch.Tensor) -> None:
        self.batch, self.labels, self.step = batch.train(), labels, 0
        groups = batch.param_groups(self.settings.lr)
        self.base_lrs = [g["lr"] for g in groups]
        self.optimizer = torch.optim.Adam(groups)

    def objective(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """L, CE, BNS and the teacher's logits for ``images`` (as given: no jitter)."""
        with self.bns.capture():
            logits = self.teacher(images)
            bns = self.bns.loss()
        ce = F.cross_entropy(logits, self.labels)
        return ce + self.settings.bns_weight * bns, ce, bns, logits

    def update(self) -> dict[str, float]:
        """One Adam step on L(J(X)) at the cosine lr of this step; returns the step's loss, CE and BNS."""
        if self.optimizer is None or self.batch is None:
            raise RuntimeError("call start() before update()")
        s = self.settings
        scale = 0.5 * (1 + math.cos(math.pi * self.step / max(s.steps, 1)))
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * scale
        loss, ce, bns, _ = self.objective(jitter_flip(self.batch(), s.jitter, s.flip))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        return {"L_r": loss.item(), "ce": ce.item(), "bns": bns.item()}

    @property
    def done(self) -> bool:
        return self.batch is not None and self.step >= self.settings.steps

    @torch.no_grad()
    def result(self) -> dict[str, torch.Tensor | float]:
        """The batch as it stands: images, labels, the teacher's logits, and its L_r / BNS (no jitter)."""
        images = self.batch().detach().clone()
        loss, _, bns, logits = self.objective(images)
        return {"images": images, "labels": self.labels.clone(), "logits": logits.detach().float(),
                "L_r": loss.item(), "bns": bns.item()}

    def state_dict(self) -> dict:
        """The batch in progress: its parameters (``images``, or ``z`` and ``generator.*``), labels, step and Adam
        state; ``{}`` between batches."""
        if self.batch is None:
            return {}
        return {**{k: v.detach().cpu() for k, v in self.batch.state_dict().items()}, "labels": self.labels.cpu(),
                "step": self.step, "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            self.batch = self.labels = self.optimizer = None
            self.step = 0
            return
        params = {k: v for k, v in state.items() if k not in ("labels", "step", "optimizer")}
        with torch.random.fork_rng(devices=[]):  # its initial draws are overwritten: the run's stream stays as saved
            batch = (PixelBatch(params["images"]) if "images" in params
                     else LatentBatch(len(params["z"]), self.image_shape, params["z"].shape[1]))
        batch.load_state_dict(params)
        self._use(batch.to(self.device), state["labels"].to(self.device))
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])


def optimise_images(teacher: nn.Module, count: int, settings: DirectSettings, batch_size: int = 64,
                    device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """``count`` images for ``teacher`` (frozen, eval mode), ``batch_size`` at a time: the whole procedure in one
    call for library users (the DFQ run does the same step by step, with checkpoints)."""
    cfg = teacher.default_cfg
    bns = BNStatistics(teacher)
    opt = DirectOptimizer(teacher, bns, cfg.input_size, cfg.num_classes, settings, device)
    parts: list[dict] = []
    try:
        for start in range(0, count, batch_size):
            opt.start(min(batch_size, count - start), first_label=start)
            while not opt.done:
                opt.update()
            parts.append(opt.result())
    finally:
        bns.remove()
    return {k: torch.cat([p[k] for p in parts]) for k in ("images", "labels", "logits")}
