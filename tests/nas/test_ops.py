"""Op registries and the parameter-free helper ops."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nascomp.errors import ConfigError
from nascomp.nas import Identity, OpRegistry, Zero


def test_registry_builds_by_name_passing_kwargs_through() -> None:
    reg = OpRegistry("demo")
    reg.add("conv", lambda c_in, c_out, stride: nn.Conv2d(c_in, c_out, 3, stride, 1))

    @reg.register("pool")
    def _pool(stride: int, **_: object) -> nn.Module:
        return nn.AvgPool2d(3, stride, 1)

    conv = reg.build("conv", c_in=3, c_out=8, stride=2)
    assert isinstance(conv, nn.Conv2d) and conv.out_channels == 8 and conv.stride == (2, 2)
    assert isinstance(reg.build("pool", stride=1, c_in=3), nn.AvgPool2d)
    assert reg.names() == ["conv", "pool"] and reg.names("p*") == ["pool"]
    assert "conv" in reg and "nope" not in reg and len(reg) == 2


def test_unknown_op_raises_config_error_listing_known_ops() -> None:
    reg = OpRegistry("demo")
    reg.add("skip_connect", lambda **_: Identity())
    reg.add("none", lambda **_: Zero())
    with pytest.raises(
        ConfigError, match=r"unknown op 'conv_9x9' in op registry 'demo'; known ops: skip_connect, none"
    ):
        reg.build("conv_9x9")


def test_registering_a_name_twice_is_refused() -> None:
    reg = OpRegistry("demo")
    reg.add("a", Identity)
    with pytest.raises(ValueError, match="twice"):
        reg.add("a", Identity)


def test_registries_are_independent() -> None:
    one, two = OpRegistry("one"), OpRegistry("two")
    one.add("x", Identity)
    assert "x" not in two


@pytest.mark.parametrize(
    ("shape", "kwargs", "expected"),
    [
        ((2, 8, 7, 7), {}, (2, 8, 7, 7)),
        ((2, 8, 7, 7), {"stride": 2}, (2, 8, 4, 4)),
        ((2, 8, 8, 8), {"c_out": 16, "stride": 2}, (2, 16, 4, 4)),
        ((2, 8, 4, 4), {"c_out": 3, "upsample": 2}, (2, 3, 8, 8)),
        ((5, 6), {"c_out": 2}, (5, 2)),
    ],
)
def test_zero_outputs_zeros_of_the_edge_output_shape(shape, kwargs, expected) -> None:
    x = torch.randn(*shape)
    out = Zero(**kwargs)(x, "ignored", label=3)
    assert out.shape == expected and not out.any() and out.dtype == x.dtype


def test_zero_matches_a_padded_strided_conv_shape() -> None:
    x = torch.randn(1, 4, 9, 9)
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1)
    assert Zero(c_out=6, stride=2)(x).shape == conv(x).shape


def test_identity_returns_its_input_and_ignores_extra_arguments() -> None:
    x = torch.randn(3, 4)
    assert Identity()(x, torch.zeros(3), y=1) is x
