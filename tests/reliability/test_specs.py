"""nascomp.specs: a JSON record a user hands nascomp is an object with the keys its loader needs, or one line."""

from __future__ import annotations

import pytest

from nascomp.errors import CheckpointError, ConfigError
from nascomp.specs import read_json_object, require_keys


@pytest.mark.parametrize("content,needle", [
    (b"[1, 2]", "is not a JSON object (it holds a list)"),
    (b"{\"a\": ", "is not valid JSON"),
    (b"\xff\xfe{}", "is not UTF-8 text (byte 0)"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
])
def test_a_file_that_is_no_json_object_is_one_line(content, needle, tmp_path):
    path = tmp_path / "quant_spec.json"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        read_json_object(path)
    assert needle in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_missing_or_unreadable_file_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="genotype .* cannot be read"):
        read_json_object(tmp_path / "none.json", "genotype", ConfigError)


def test_require_keys_names_the_first_missing_key_and_checks_types(tmp_path):
    spec = {"model": "demo_net", "wbits": 4, "abits": True}
    assert require_keys(spec, ["model", "wbits"], "s.json") is spec
    with pytest.raises(CheckpointError, match=r"s.json lacks keys 'layers', 'x'; re-save"):
        require_keys(spec, ["model", "layers", "x"], "s.json")
    with pytest.raises(CheckpointError, match=r"'abits' must be a whole number, not boolean True"):
        require_keys(spec, {"model": str, "abits": int}, "s.json")
    with pytest.raises(CheckpointError, match=r"not a JSON object \(it holds a list\)"):
        require_keys([1], ["model"], "s.json")
    assert require_keys({"r": 1}, {"r": (int, float)}, "s.json") == {"r": 1}
