"""The AutoReCon generator search space (Zhu et al., "AutoReCon: Neural Architecture Search-based
Reconstruction for Data-free Compression", IJCAI 2021, arXiv:2105.12151), declared through :mod:`nascomp.nas`.

The generator, as published with the found genotypes (C = 64 channels, s = image_size / 8)::

    z (dim 100) = [z0 | z1 | z2]  (33 / 33 / 34)      t_k = Linear_k(z_k) viewed as C x (2^k s) x (2^k s)
    x_0 = t_0,   x_1 = cell_0(x_0) + t_1,   x_2 = cell_1(x_1) + t_2
    image = BN_noaffine(tanh(conv3x3(LeakyReLU_0.2(CBN(cell_2(x_2), y)))))

A cell doubles the resolution (``p`` = the previous cell's nodes, at half resolution)::

    n0 = up0(x),   n1 = up1(x)
    n2 = e0(n0) + e1(n1)         [+ x0(p.n0) + x1(p.n1) + x2(p.n2)   in cells 1 and 2]
    n3 = e2(n0) + e3(n1) + e4(n2) [+ x3(p.n0) + x4(p.n1) + x5(p.n2)   in cells 1 and 2]
    cell(x) = n3

Edge kinds and their candidate ops (the alpha layout: 6 up + 15 normal + 12 cross edges):

- ``up``     [nearest, bilinear]: interpolate x2 (nearest: :func:`.generators.upsample_nearest2x`) -> CBN -> LeakyReLU(0.2) -> 1x1 conv (bias);
- ``normal`` [none, skip_connect, conv_1x1, conv_3x3, conv_5x5, dil_conv_3x3, dil_conv_5x5]:
  CBN -> LeakyReLU(0.2) -> k x k conv (bias, 'same' padding; the ``dil_`` convs use dilation 2);
- ``cross``  [none, nearest, bilinear]: like an up edge; ``none`` gives zeros.

CBN is the class-conditional BatchNorm ``gamma[y] * BN_noaffine(x) + beta[y]``: the only place where the
labels enter. The supernet mixes every edge with ``softmax(alpha)`` (:class:`~nascomp.nas.MixedOp`); the
derived generator builds only the chosen op per edge and drops ``none`` edges. Image sizes that are not
8 x s (e.g. 28 x 28) are generated at 8 * floor(size / 8) and resized (bilinear) before the last BN.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..nas import EdgeKind, Genotype, Identity, MixedOp, OpRegistry, SearchSpace, Zero, derive, validate
from .generators import ImageSource, upsample_nearest2x

CHANNELS = 64
CELLS = 3
NODES = ("n0", "n1", "n2", "n3")
UP_OPS = ["nearest", "bilinear"]
NORMAL_OPS = ["none", "skip_connect", "conv_1x1", "conv_3x3", "conv_5x5", "dil_conv_3x3", "dil_conv_5x5"]
CROSS_OPS = ["none", "nearest", "bilinear"]
#: ``(kernel, dilation)`` of the conv ops of a normal edge.
CONV_OPS = {"conv_1x1": (1, 1), "conv_3x3": (3, 1), "conv_5x5": (5, 1), "dil_conv_3x3": (3, 2),
            "dil_conv_5x5": (5, 2)}
#: Resolution factor of each edge kind's output over its input.
SCALE = {"up": 2, "normal": 1, "cross": 2}


class ConditionalBatchNorm2d(nn.Module):
    """Class-conditional BN: ``gamma[y] * BN(x) + beta[y]``, BN without affine; gamma = 1, beta = 0 at init."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gamma = nn.Embedding(num_classes, channels)
        self.beta = nn.Embedding(num_classes, channels)
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.gamma(y)[:, :, None, None] * self.bn(x) + self.beta(y)[:, :, None, None]


class PreActConv(nn.Module):
    """``conv(LeakyReLU_0.2(CBN(x, y)))``: a k x k conv with bias, 'same' padding ``d * (k - 1) / 2``."""

    def __init__(self, c_in: int, c_out: int, num_classes: int, kernel: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.norm = ConditionalBatchNorm2d(c_in, num_classes)
        self.conv = nn.Conv2d(c_in, c_out, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.conv(F.leaky_relu(self.norm(x, y), 0.2))


class UpEdge(nn.Module):
    """An up or cross edge: ``interpolate(x, x scale, mode)`` then :class:`PreActConv` 1x1."""

    def __init__(self, mode: str, channels: int, num_classes: int, scale: int = 2) -> None:
        super().__init__()
        self.mode, self.scale = mode, scale
        self.body = PreActConv(channels, channels, num_classes)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.mode == "nearest" and self.scale == 2:
            return self.body(upsample_nearest2x(x), y)
        align = False if self.mode == "bilinear" else None
        return self.body(F.interpolate(x, scale_factor=self.scale, mode=self.mode, align_corners=align), y)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, scale={self.scale}"


# --- the op registry: every factory is ``factory(channels, num_classes, scale)`` ------------------------
def _same_size(name: str, op: Callable[[int, int], nn.Module]) -> Callable[..., nn.Module]:
    def factory(channels: int, num_classes: int, scale: int) -> nn.Module:
        if scale != 1:
            raise ValueError(f"op {name!r} keeps the resolution; it cannot sit on an edge of scale {scale}")
        return op(channels, num_classes)

    return factory


def _generator_ops() -> OpRegistry:
    ops = OpRegistry("autorecon")
    ops.add("none", lambda channels, num_classes, scale: Zero(channels, upsample=scale))
    ops.add("skip_connect", _same_size("skip_connect", lambda c, k: Identity()))
    for name, (kernel, dilation) in CONV_OPS.items():
        ops.add(name, _same_size(name, lambda c, k, kk=kernel, d=dilation: PreActConv(c, c, k, kk, d)))
    for mode in UP_OPS:
        ops.add(mode, lambda channels, num_classes, scale, m=mode: UpEdge(m, channels, num_classes, scale))
    return ops


#: The candidate ops of every edge kind, by name.
GEN_OPS = _generator_ops()


# --- the space as data ------------------------------------------------------------------------------------
def _cell_inputs(kind: str, k: int) -> tuple[dict[str, list[str]], list[str]]:
    """``(node -> inputs, edge names)`` of one kind in cell ``k`` (edge order = the published order)."""
    c, p = f"cell{k}", f"cell{k - 1}"
    if kind == "up":
        return {f"{c}.n0": [f"{c}.in"], f"{c}.n1": [f"{c}.in"]}, [f"{c}.up0", f"{c}.up1"]
    if kind == "normal":
        return ({f"{c}.n2": [f"{c}.n0", f"{c}.n1"], f"{c}.n3": [f"{c}.n0", f"{c}.n1", f"{c}.n2"]},
                [f"{c}.e{i}" for i in range(5)])
    if k == 0:
        return {}, []
    prev = [f"{p}.n0", f"{p}.n1", f"{p}.n2"]
    return {f"{c}.n2": prev, f"{c}.n3": list(prev)}, [f"{c}.x{i}" for i in range(6)]


def _kind(kind: str, ops: list[str]) -> EdgeKind:
    inputs: dict[str, list[str]] = {}
    edges: list[str] = []
    for k in range(CELLS):
        cell_inputs, cell_edges = _cell_inputs(kind, k)
        inputs.update(cell_inputs)
        edges += cell_edges
    return EdgeKind(ops=ops, edges=edges, inputs=inputs, graph="generator")


#: The AutoReCon space: 6 up, 15 normal and 12 cross edges, one ``generator`` graph for drawing.
SPACE = SearchSpace("autorecon", {"up": _kind("up", UP_OPS), "normal": _kind("normal", NORMAL_OPS),
                                  "cross": _kind("cross", CROSS_OPS)})

EdgeBuilder = Callable[[str, int, int], "nn.Module | None"]  # (kind, alpha row, scale) -> op or None


class GeneratorCell(nn.Module):
    """One cell; its edges (and their wiring) are read from :data:`SPACE`, the ops come from ``build``."""

    def __init__(self, index: int, build: EdgeBuilder) -> None:
        super().__init__()
        self.index = index
        self.edges = nn.ModuleDict()
        self.incoming: dict[str, list[tuple[str, int, str, str]]] = {f"cell{index}.{n}": [] for n in NODES}
        for kind, spec in SPACE.kinds.items():
            for row, (name, (node, inp)) in enumerate(spec.edge_pairs().items()):
                if not name.startswith(f"cell{index}."):
                    continue
                local = name.split(".", 1)[1]
                self.incoming[node].append((kind, row, local, inp))
                op = build(kind, row, SCALE[kind])
                if op is not None:
                    self.edges[local] = op

    def forward(self, x: torch.Tensor, y: torch.Tensor, values: dict[str, torch.Tensor],
                weights: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
        """Add this cell's input and nodes to ``values`` (which holds the previous cell's nodes)."""
        values = {**values, f"cell{self.index}.in": x}
        for node, edges in self.incoming.items():
            terms = [self._edge(kind, row, local, values[inp], y, weights) for kind, row, local, inp in edges]
            kept = [t for t in terms if t is not None]
            values[node] = _add(kept) if kept else torch.zeros_like(values[f"cell{self.index}.n0"])
        return values

    def _edge(self, kind: str, row: int, local: str, x: torch.Tensor, y: torch.Tensor,
              weights: dict[str, torch.Tensor] | None) -> torch.Tensor | None:
        if local not in self.edges:
            return None
        op = self.edges[local]
        return op(x, y) if weights is None else op(x, weights[kind][row], y)


def _add(terms: list[torch.Tensor]) -> torch.Tensor:
    """The sum of a non-empty list of tensors."""
    out = terms[0]
    for term in terms[1:]:
        out = out + term
    return out


class AutoReConBase(ImageSource):
    """Latent split and Linear stem, three cells, head: shared by the supernet and the derived generator."""

    def __init__(self, num_classes: int, image_shape: tuple[int, int, int], build: EdgeBuilder,
                 latent_dim: int = 100, channels: int = CHANNELS) -> None:
        super().__init__(num_classes, image_shape, latent_dim)
        if latent_dim < CELLS:
            raise ConfigError(f"latent_dim={latent_dim}: the AutoReCon generator splits z in {CELLS} parts")
        img_channels, height, width = self.image_shape
        self.channels = channels
        self.base = (max(1, height // 8), max(1, width // 8))
        third = latent_dim // CELLS
        self.split = (third, third, latent_dim - 2 * third)
        self.stem = nn.ModuleList(
            nn.Linear(part, channels * (self.base[0] << k) * (self.base[1] << k)) for k, part in enumerate(self.split)
        )
        self.cells = nn.ModuleList(GeneratorCell(k, build) for k in range(CELLS))
        self.head = PreActConv(channels, img_channels, num_classes, kernel=3)
        self.out_norm = nn.BatchNorm2d(img_channels, affine=False)

    def edge_weights(self) -> dict[str, torch.Tensor] | None:
        """Mixture weights per kind (supernet), or None when each edge holds one op (derived)."""
        return None

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        weights = self.edge_weights()
        values: dict[str, torch.Tensor] = {}
        x: torch.Tensor | None = None
        for k, (fc, cell, part) in enumerate(zip(self.stem, self.cells, z.split(self.split, dim=1), strict=True)):
            t = fc(part).view(z.shape[0], self.channels, self.base[0] << k, self.base[1] << k)
            x = t if x is None else x + t
            values = cell(x, y, values, weights)
            x = values[f"cell{k}.n3"]
        assert x is not None
        out = torch.tanh(self.head(x, y))
        if out.shape[-2:] != self.image_shape[1:]:
            out = F.interpolate(out, size=self.image_shape[1:], mode="bilinear", align_corners=False)
        return self.out_norm(out)


class AutoReConSupernet(AutoReConBase):
    """Every edge a :class:`~nascomp.nas.MixedOp` over its kind's ops, mixed by ``softmax(self.arch[kind])``."""

    def __init__(self, num_classes: int, image_shape: tuple[int, int, int], latent_dim: int = 100,
                 channels: int = CHANNELS) -> None:
        def build(kind: str, row: int, scale: int) -> nn.Module:
            return MixedOp(SPACE.kinds[kind].ops, GEN_OPS, channels=channels, num_classes=num_classes, scale=scale)

        super().__init__(num_classes, image_shape, build, latent_dim, channels)
        self.arch = SPACE.arch_params()

    def edge_weights(self) -> dict[str, torch.Tensor]:
        return {kind: self.arch.weights(kind) for kind in self.arch.kinds}

    def derive(self, **meta: object) -> Genotype:
        """The genotype: per-edge argmax of the alphas (``none`` may win)."""
        return derive(SPACE, self.arch, meta)


class AutoReConGenerator(AutoReConBase):
    """The generator of a genotype: one op per edge, ``none`` edges left out; the GDFQ generator's interface."""

    def __init__(self, genotype: Genotype, num_classes: int, image_shape: tuple[int, int, int],
                 latent_dim: int = 100, channels: int = CHANNELS) -> None:
        validate(genotype, SPACE)
        chosen = {kind: genotype.ops(kind) for kind in SPACE.kinds}

        def build(kind: str, row: int, scale: int) -> nn.Module | None:
            op = chosen[kind][row]
            return None if op == "none" else GEN_OPS.build(op, channels=channels, num_classes=num_classes,
                                                            scale=scale)

        super().__init__(num_classes, image_shape, build, latent_dim, channels)
        self.genotype = genotype


# --- published genotypes ----------------------------------------------------------------------------------
PREFIX = "autorecon-"


def published_genotypes() -> list[str]:
    """Names of the genotypes shipped with nascomp (``autorecon-<dataset>-<model>``)."""
    folder = resources.files(__package__).joinpath("genotypes")
    return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))


def load_genotype(spec: str | Path) -> Genotype:
    """A published genotype by name (``autorecon-cifar10-resnet20``) or a genotype file, validated."""
    text = str(spec)
    if text.startswith(PREFIX) and not text.endswith(".json"):
        known = published_genotypes()
        if text not in known:
            raise ConfigError(f"unknown published genotype {text!r}; choose one of {', '.join(known)} "
                              "or give the path of a genotype.json")
        path = resources.files(__package__).joinpath("genotypes", f"{text}.json")
        return Genotype.from_json(path.read_text(), SPACE, source=text)
    return Genotype.load(text, SPACE)


def generator_from_genotype(spec: str | Path | Genotype, num_classes: int, image_shape: tuple[int, int, int],
                            channels: int = CHANNELS) -> AutoReConGenerator:
    """The derived generator of a genotype (object, published name or file) for a model's classes and input."""
    genotype = spec if isinstance(spec, Genotype) else load_genotype(spec)
    return AutoReConGenerator(genotype, num_classes, image_shape, channels=channels)
