"""Protocol options: bits per layer (GDFQ: all alike; BRECQ/Genie: first and last at 8 bits; name patterns)."""

import json

import pytest

from nascomp.cli import main
from nascomp.config import DFQ_PRESETS, DFQConfig, resolve
from nascomp.dfq import DFQRun
from nascomp.errors import ConfigError
from nascomp.models import create_model
from nascomp.quant import quant_spec, quantize_model
from nascomp.quant.modules import bits_by_layer, protocol_bits


@pytest.fixture(scope="module")
def resnet20():
    return create_model("cifar_resnet20")


def test_gdfq_protocol_is_the_default_every_layer_alike_with_a_float_image(resnet20):
    bits = bits_by_layer(quantize_model(resnet20, 4, 4, layer_bits=protocol_bits(resnet20, 4, 4)))
    assert bits.pop("conv1") == [4, 32] and all(wa == [4, 4] for wa in bits.values())


def test_first_last_bits_8_keeps_the_first_conv_and_the_last_linear_at_8_bits(resnet20):
    student = quantize_model(resnet20, 4, 4, layer_bits=protocol_bits(resnet20, 4, 4, first_last_bits=8))
    bits = bits_by_layer(student)
    assert bits.pop("conv1") == [8, 32]  # 8-bit weights on the float image
    assert bits.pop("linear") == [8, 8]
    assert len(bits) == 18 and all(wa == [4, 4] for wa in bits.values())
    spec = quant_spec(student)
    assert spec["layers"]["linear"]["wbits"] == 8 and spec["layers"]["layer1.0.conv1"]["wbits"] == 4
    assert spec["layer_bits"] == {"conv1": [8, 8], "linear": [8, 8]}
    again = quantize_model(create_model("cifar_resnet20"), 4, 4, layer_bits=json.loads(json.dumps(spec))["layer_bits"])
    assert bits_by_layer(again) == bits_by_layer(student)  # the spec rebuilds the same per-layer bits


def test_a_pattern_sets_the_bits_of_the_layers_it_names_and_a_later_one_wins(resnet20):
    bits = protocol_bits(resnet20, 4, 4, patterns=["layer3.*=8/8", "layer3.2.conv2=6/5"])
    assert bits["layer3.0.conv1"] == (8, 8) and bits["layer3.2.conv2"] == (6, 5)
    assert bits["layer2.2.conv2"] == (4, 4) and bits["linear"] == (4, 4)


@pytest.mark.parametrize("pattern,needle", [("layer9.*=8/8", "matches no Conv2d/Linear layer"),
                                            ("layer3.*=8", "write PATTERN=W/A"), ("conv1=1/8", "not supported")])
def test_a_pattern_that_matches_nothing_or_is_malformed_is_a_config_error(resnet20, pattern, needle):
    with pytest.raises(ConfigError, match=needle):
        protocol_bits(resnet20, 4, 4, patterns=[pattern])


@pytest.mark.parametrize("argv,needle", [(["--layer-bits", "nothing*=8/8"], "matches no Conv2d/Linear layer"),
                                         (["--layer-bits", "features.0=8"], "PATTERN=W/A"),
                                         (["--first-last-bits", "1"], "first_last_bits=1")])
def test_bad_protocol_options_are_one_line_and_exit_2(tmp_path, capsys, argv, needle):
    assert main(["dfq", "--out", str(tmp_path / "r"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and not (tmp_path / "r").exists()


def test_a_dfq_run_records_its_protocol_and_bits_per_layer(tmp_path):
    cfg = resolve(DFQConfig, DFQ_PRESETS, "demo", dict(gen_steps=2, calib_size=32, batch_size=16, epochs=1,
                                                        holdout_size=0, first_last_bits=8,
                                                        layer_bits=["features.3=6/5"]))
    run = DFQRun(cfg, out=str(tmp_path / "r"), quiet=True)
    metrics = run.run()
    assert metrics["protocol"].startswith("BRECQ/Genie protocol") and "features.3=6/5" in metrics["protocol"]
    assert metrics["bits_per_layer"] == {"features.0": [8, 32], "features.3": [6, 5], "features.6": [4, 4],
                                     "classifier": [8, 8]}
    assert quant_spec(run.student)["layer_bits"] == {"features.0": [8, 8], "features.3": [6, 5], "classifier": [8, 8]}
