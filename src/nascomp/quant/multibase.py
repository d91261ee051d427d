"""Multiple binary bases: ABC-Net's M x N binary convolutions and Group-Net's K binary branches.

Both spend more binary convolutions per layer to get closer to a real-valued one, so their BOPs grow with the
number of bases; :func:`nascomp.quant.cost.count_cost` reads ``binary_convs`` (the binary convolutions one call
runs) from each layer. Both are :class:`~nascomp.quant.binary.BinaryConv2d` subclasses, so the staged training
(:func:`~nascomp.quant.binary.set_binary_stage`), the weight-decay groups and the cost counter see them.

A choice of bases is a short string, plain JSON (a genotype's ``meta["bases"]``, a config field, a model
constructor argument): ``single`` (one base, Bi-Real/XNOR), ``groupnet:K`` (K branches), ``abcnet:MxN``
(M weight bases, N activation bases); see :func:`parse_bases`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .binary import BinaryConv2d, ScaledSignSTE, binarize_activation, clipped_ste_grad

SCHEMES = ("single", "groupnet", "abcnet")
_PATTERNS = {
    "single": re.compile(r"^single$"),
    "groupnet": re.compile(r"^groupnet:(-?\d+)$"),
    "abcnet": re.compile(r"^abcnet:(-?\d+)x(-?\d+)$"),
}
_FORMS = "single | groupnet:K (e.g. groupnet:4) | abcnet:MxN (e.g. abcnet:3x3)"


@dataclass(frozen=True)
class Bases:
    """How many binary bases each binary conv has: ``branches`` (Group-Net K) or ``weights`` x ``acts`` (ABC-Net)."""

    scheme: str = "single"
    branches: int = 1
    weights: int = 1
    acts: int = 1

    @property
    def convs(self) -> int:
        """Binary convolutions per layer: K (Group-Net), M x N (ABC-Net), 1 (single)."""
        return self.branches * self.weights * self.acts

    def __str__(self) -> str:
        if self.scheme == "groupnet":
            return f"groupnet:{self.branches}"
        if self.scheme == "abcnet":
            return f"abcnet:{self.weights}x{self.acts}"
        return "single"


SINGLE = Bases()


def parse_bases(text: str | Bases | None) -> Bases:
    """``"single"``, ``"groupnet:K"`` or ``"abcnet:MxN"`` (None: single) -> :class:`Bases`; one-line ConfigError else."""
    if isinstance(text, Bases):
        return text
    if text is None:
        return SINGLE
    spec = str(text).strip().lower()
    scheme = spec.split(":")[0]
    match = _PATTERNS[scheme].match(spec) if scheme in _PATTERNS else None
    if match is None:
        known = f"unknown base scheme {scheme!r}" if scheme not in SCHEMES else f"bad bases {text!r}"
        raise ConfigError(f"{known}; use {_FORMS}")
    counts = [int(g) for g in match.groups()]
    if any(n < 1 for n in counts):
        raise ConfigError(f"bases {text!r}: every base count must be at least 1; use {_FORMS}")
    if scheme == "groupnet":
        return Bases("groupnet", branches=counts[0])
    if scheme == "abcnet":
        return Bases("abcnet", weights=counts[0], acts=counts[1])
    return SINGLE


def weight_shifts(m: int) -> torch.Tensor:
    """ABC-Net's ``u_i = -1 + 2 (i - 1) / (M - 1)``, i = 1..M: shifts spread over [-std, std] (``[0]`` for M = 1)."""
    if m == 1:
        return torch.zeros(1)
    return torch.linspace(-1.0, 1.0, m)


def abc_weight_bases(w: torch.Tensor, m: int) -> torch.Tensor:
    """``B_i = sign(W - mean(W) + u_i std(W))`` per output channel, stacked as ``(M, *w.shape)``; M = 1: ``sign(W)``."""
    if m == 1:
        return torch.where(w >= 0, 1.0, -1.0).to(w.dtype).unsqueeze(0)
    dims = tuple(range(1, w.dim()))
    mean = w.mean(dim=dims, keepdim=True)
    std = w.std(dim=dims, keepdim=True) if w[0].numel() > 1 else torch.zeros_like(mean)
    u = weight_shifts(m).to(w).view(m, *([1] * w.dim()))
    centred = (w - mean).unsqueeze(0) + u * std.unsqueeze(0)
    return torch.where(centred >= 0, 1.0, -1.0).to(w.dtype)


def least_squares_alphas(w: torch.Tensor, bases: torch.Tensor, ridge: float = 1e-6) -> torch.Tensor:
    """Per output channel ``alpha = argmin ||W_c - sum_i alpha_i B_i,c||^2 = (B^T B + ridge I)^-1 B^T W_c``.

    ``bases`` is ``(M, C, ...)``; returns ``(M, C)``. For M = 1 and ``B = sign(W)`` this is ``mean|W_c|`` (XNOR).
    A channel whose bases are linearly dependent (e.g. two-valued weights, where ``B_1 = -B_M``) makes the Gram
    matrix singular in float32 (the ridge is below its rounding); it takes the minimum-norm solution
    ``pinv(B^T B) B^T W_c`` instead, which reconstructs ``W_c`` equally well.
    """
    m, c = bases.shape[:2]
    b = bases.reshape(m, c, -1).permute(1, 2, 0)  # (C, n, M)
    gram = b.transpose(1, 2) @ b + ridge * torch.eye(m, dtype=w.dtype, device=w.device)
    rhs = b.transpose(1, 2) @ w.reshape(c, -1, 1)
    alphas, info = torch.linalg.solve_ex(gram, rhs)
    singular = info != 0
    if singular.any():
        alphas[singular] = torch.linalg.pinv(gram[singular], hermitian=True) @ rhs[singular]
    return alphas.squeeze(-1).T


class ABCWeightSTE(torch.autograd.Function):
    """ABC-Net weights: ``W_eff = sum_i alpha_i B_i`` with ``B_i`` from :func:`abc_weight_bases` and least-squares alphas.

    Forward (Lin et al., NeurIPS 2017, Sec. 3.1), per output channel: ``B_i = sign(W - mean W + u_i std W)``,
    ``alpha = (B^T B)^-1 B^T W`` (the paper's linear regression), M = 1: ``sign(W) * mean|W|`` (XNOR-Net).
    Backward (ours, the single base's rule applied to the sum): ``dL/dW = dL/dW_eff * 1{|W| <= 1}``; the
    alphas are constants, as the per-channel scale of the single base is.
    """

    @staticmethod
    def forward(ctx, w: torch.Tensor, m: int) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(w)
        bases = abc_weight_bases(w, m)
        alphas = least_squares_alphas(w, bases)
        return (alphas.view(*alphas.shape, *([1] * (w.dim() - 1))) * bases).sum(0)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (w,) = ctx.saved_tensors
        return grad_out * clipped_ste_grad(w), None


class ABCConv2d(BinaryConv2d):
    """ABC-Net conv (Lin et al., "Towards Accurate Binary Convolutional Neural Network", NeurIPS 2017).

    ``y = sum_{i<=M} sum_{n<=N} alpha_i beta_n conv(A_n, B_i)``: M weight bases (:class:`ABCWeightSTE`) and
    N activation bases ``A_n = sign(x - s_n)`` with learned shifts ``s_n`` and scales ``beta_n``, i.e. M x N
    binary convolutions (``binary_convs``). The convolution is bilinear, so the simulation runs one conv
    ``conv(sum_n beta_n A_n, sum_i alpha_i B_i)``: the same numbers, one conv's time.
    Gradients: ``dA_n/dx = g(x - s_n)`` with Bi-Real's ApproxSign ``g`` (the paper's STE on the clipped
    ``h_v(x) = clip(x + v, 0, 1)``, with Bi-Real's shape), ``dA_n/ds_n = -g(x - s_n)``, ``dy/dbeta_n`` exact.
    Init: ``s_n = (2n - N - 1) / N`` (0 for N = 1), ``beta_n = 1 / N``, so M = N = 1 is the single-base
    :class:`BinaryConv2d` (same output for the same weight). A stage flag that is off leaves that operand real
    and counts one base for it.
    """

    def __init__(self, *args, weight_bases: int = 1, act_bases: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        if weight_bases < 1 or act_bases < 1:
            raise ConfigError(f"ABC-Net needs M >= 1 weight and N >= 1 activation bases, got {weight_bases}x{act_bases}")
        self.weight_bases, self.act_bases = weight_bases, act_bases
        n = act_bases
        self.shifts = nn.Parameter(torch.tensor([(2 * i - n - 1) / n for i in range(1, n + 1)]))
        self.betas = nn.Parameter(torch.full((n,), 1.0 / n))

    @property
    def binary_convs(self) -> int:
        """Binary convolutions per call (for the cost counter): M x N, or one base per real-valued operand."""
        return (self.weight_bases if self.binary_weights else 1) * (self.act_bases if self.binary_acts else 1)

    @property
    def weight_planes(self) -> int:
        """Binary planes stored per weight (for the model size): M once the weights are binary."""
        return self.weight_bases if self.binary_weights else 1

    def binary_input(self, x: torch.Tensor) -> torch.Tensor:
        """``sum_n beta_n sign(x - s_n)``; exactly ``sign(x)`` for N = 1 at init."""
        out = 0
        for n in range(self.act_bases):
            out = out + self.betas[n] * binarize_activation(x - self.shifts[n], self.ste)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.binary_acts:
            x = self.binary_input(x)
        weight = self.weight
        if self.binary_weights:
            weight = ScaledSignSTE.apply(weight) if self.weight_bases == 1 else ABCWeightSTE.apply(weight, self.weight_bases)
        return self._conv_forward(x, weight, self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, bases={self.weight_bases}x{self.act_bases}"


class GroupNetConv2d(BinaryConv2d):
    """K binary branches as one binary conv (Zhuang et al., "Structured Binary Neural Networks for Accurate
    Image Classification and Semantic Segmentation", CVPR 2019): the layer holds K weight sets
    ``W_k`` (``K * out_channels`` filters of ``in_channels`` each) and computes every branch
    ``y_k = conv(sign(x_k), sign(W_k) * mean|W_k|)`` (single-base binarization, :class:`BinaryConv2d`).

    Input: ``(N, Cin, H, W)``, read by every branch (``x_k = x``), or ``(N, K * Cin, H, W)``, branch k reading
    channels ``k*Cin .. (k+1)*Cin`` (a grouped conv, ``groups = K``). Output: the K branches stacked,
    ``(N, K * Cout, H', W')``; :class:`BranchSum` aggregates them. The MACs are K times one branch's, so the cost
    counter sees K binary convolutions without a factor. Gradients: those of :class:`BinaryConv2d` per branch.
    """

    def __init__(self, in_channels: int, out_channels: int, *args, branches: int = 1, **kwargs):
        if branches < 1:
            raise ConfigError(f"Group-Net needs K >= 1 branches, got {branches}")
        super().__init__(in_channels, branches * out_channels, *args, **kwargs)
        self.branches, self.branch_out = branches, out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.binary_acts:
            x = binarize_activation(x, self.ste)
        weight = ScaledSignSTE.apply(self.weight) if self.binary_weights else self.weight
        groups = self.branches if self.branches > 1 and x.shape[1] == self.branches * self.in_channels else 1
        return F.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation, groups)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, branches={self.branches}"


class BranchSum(nn.Module):
    """Group-Net's aggregation ``y = sum_k lambda_k y_k`` of K stacked branches ``(N, K * C, ...)`` -> ``(N, C, ...)``.

    ``lambda_k`` are learned scalars (the paper's learned scales), initialised to ``1 / K`` (the mean; K = 1
    is the identity). Gradients: ``dy/dy_k = lambda_k``, ``dy/dlambda_k = y_k``.
    """

    def __init__(self, branches: int):
        super().__init__()
        self.branches = branches
        self.scales = nn.Parameter(torch.full((branches,), 1.0 / branches))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        n, kc = y.shape[:2]
        parts = y.view(n, self.branches, kc // self.branches, *y.shape[2:])
        return torch.einsum("nk...,k->n...", parts, self.scales)

    def extra_repr(self) -> str:
        return f"branches={self.branches}"


class SoftConnection(nn.Module):
    """Group-Net's learned soft connection between adjacent groups (optional): branch k of the next group reads
    ``x_k = sigma(theta_k) * y_k + (1 - sigma(theta_k)) * y``, a learned mix of its own branch's output ``y_k``
    and the aggregated output ``y`` (our reading of the paper's gated connection). ``theta_k = 0`` at init
    (an even mix). Gradients: exact (sigmoid gate).
    """

    def __init__(self, branches: int):
        super().__init__()
        self.branches = branches
        self.theta = nn.Parameter(torch.zeros(branches))

    def forward(self, branches: torch.Tensor, aggregate: torch.Tensor) -> torch.Tensor:
        n, kc = branches.shape[:2]
        gate = torch.sigmoid(self.theta).view(1, self.branches, 1, *([1] * (branches.dim() - 2)))
        parts = branches.view(n, self.branches, kc // self.branches, *branches.shape[2:])
        mixed = gate * parts + (1 - gate) * aggregate.unsqueeze(1)
        return mixed.reshape(branches.shape)


def binary_conv(c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0,
                bases: Bases | str | None = None) -> BinaryConv2d:
    """The binary conv of ``bases``: BinaryConv2d (single), ABCConv2d (abcnet) or GroupNetConv2d (groupnet,
    output K stacked branches). No bias."""
    b = parse_bases(bases)
    if b.scheme == "abcnet":
        return ABCConv2d(c_in, c_out, kernel, stride, padding, bias=False, weight_bases=b.weights, act_bases=b.acts)
    if b.scheme == "groupnet":
        return GroupNetConv2d(c_in, c_out, kernel, stride, padding, bias=False, branches=b.branches)
    return BinaryConv2d(c_in, c_out, kernel, stride, padding, bias=False)
