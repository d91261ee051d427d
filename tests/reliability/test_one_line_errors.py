"""Every bad input of issue 13's list is one line on stderr and exit 2, never a traceback: damaged or foreign
weights, a damaged saved student or quant spec, a damaged run folder on --resume, out-of-range options, hostile
genotype JSON, unreadable paths and devices. Each case runs through the command line (``nascomp.cli.main``)."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from nascomp.cli import main


def _load_errors_doc():
    """scripts/errors_doc.py: every error line provoked here must fit a message listed in docs/ERRORS.md."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "errors_doc.py"
    spec = importlib.util.spec_from_file_location("errors_doc", script)
    module = importlib.util.module_from_spec(spec)
    sys.modules["errors_doc"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


TINY = ["--gen-steps", "4", "--calib-size", "64", "--epochs", "1", "--batch-size", "32", "--quiet", "--device", "cpu"]
ERRORS_DOC = _load_errors_doc()
UNREADABLE = Path("/proc/self/mem")  # a file that even root cannot read (EIO): chmod does not lock root out


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A finished tiny dfq run: config.yaml, checkpoint.pt, student.safetensors, quant_spec.json."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(["dfq", "--out", str(out), *TINY]) == 0
    return out


@pytest.fixture(scope="module")
def weights(run_dir, tmp_path_factory) -> Path:
    """The demo teacher's weights as a good .safetensors file."""
    from nascomp.demo import demo_teacher

    path = tmp_path_factory.mktemp("weights") / "demo.safetensors"
    save_file({k: v.contiguous() for k, v in demo_teacher().state_dict().items()}, str(path))
    return path


def _error(capsys, argv: list[str]) -> str:
    try:
        code = main(argv)
    except SystemExit as e:  # argparse refuses at parse time
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "Traceback" not in err and "\n" not in err, err
    assert ERRORS_DOC.matches(err), f"not listed in docs/ERRORS.md (run python scripts/errors_doc.py): {err}"
    return err


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / "copy"))


def _eval(weights) -> list[str]:
    return ["eval", "--model", "demo_net", "--weights", str(weights), "--data", "demo", "--quiet"]


# --- weights given by the user --------------------------------------------------------------------------------
@pytest.mark.parametrize("name,content", [
    ("truncated.safetensors", None),
    ("garbage.safetensors", os.urandom(300)),
    ("huge-header.safetensors", (10**15).to_bytes(8, "little") + b"{}"),
    ("notes.safetensors", b"hello\nworld\n"),
    ("notes.pt", b"hello\nworld\n"),
    ("empty.pt", b""),
])
def test_damaged_or_foreign_weights(name, content, weights, tmp_path, capsys):
    path = tmp_path / name
    path.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2] if content is None else content)
    assert f"checkpoint {path} could not be read" in _error(capsys, _eval(path))


def test_weights_that_are_a_folder_a_device_or_unreadable(tmp_path, capsys):
    assert "is a folder" in _error(capsys, _eval(tmp_path))
    assert "is not a regular file" in _error(capsys, _eval("/dev/zero"))
    if UNREADABLE.exists():
        assert "could not be read" in _error(capsys, _eval(UNREADABLE))


# --- a damaged run folder on --resume ---------------------------------------------------------------------------
@pytest.mark.parametrize("content", [b"a: [1, 2\n  b: {{{\n", b"\xff\xfe\x00\x81binary", b"- a list\n- not a mapping\n"])
def test_a_damaged_config_yaml_on_resume(content, run_dir, tmp_path, capsys):
    run = _copy(run_dir, tmp_path)
    (run / "config.yaml").write_bytes(content)
    assert "config.yaml" in _error(capsys, ["dfq", "--resume", str(run), *TINY])


def test_a_truncated_checkpoint_on_resume(run_dir, tmp_path, capsys):
    run = _copy(run_dir, tmp_path)
    buffer = io.BytesIO()
    torch.save({"progress": {"stage": 1}, "parts": {"w": torch.zeros(1000)}}, buffer)
    (run / "checkpoint.pt").write_bytes(buffer.getvalue()[:1500])
    assert "checkpoint.pt is damaged" in _error(capsys, ["dfq", "--resume", str(run), *TINY])


# --- a saved student (loaded by export/: it checks its inputs with nascomp.specs-style one-line errors) -------
def _student_files(run: Path) -> tuple[Path, Path]:
    """The saved student's weights and spec, whatever their names (quant_spec.json or model.json)."""
    for weights, spec in ((run / "model.safetensors", run / "model.json"),
                          (run / "student.safetensors", run / "quant_spec.json")):
        if spec.is_file():
            return weights, spec
    raise AssertionError(f"{run} holds no saved student")


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_student_safetensors(damage, run_dir, tmp_path, capsys):
    st, _ = _student_files(_copy(run_dir, tmp_path))
    st.write_bytes(st.read_bytes()[:200] if damage == "truncated" else os.urandom(500))
    assert st.name in _error(capsys, ["eval", "--weights", str(st.parent), "--data", "demo"])


@pytest.mark.parametrize("spec", ["[1, 2]", "{}", "WITHOUT_WBITS", b"\xff\xfe garbage"])
def test_a_quant_spec_that_is_no_object_or_lacks_keys(spec, run_dir, tmp_path, capsys):
    _, path = _student_files(_copy(run_dir, tmp_path))
    if spec == "WITHOUT_WBITS":
        data = json.loads(path.read_text())
        del data[next(k for k in ("wbits", "architecture") if k in data)]  # a key every layout requires
        spec = json.dumps(data)
    path.write_bytes(spec if isinstance(spec, bytes) else spec.encode())
    assert path.name in _error(capsys, ["eval", "--weights", str(path.parent), "--data", "demo"])


# --- options out of range, at parse time ------------------------------------------------------------------------
@pytest.mark.parametrize("argv,needle", [
    (["eval", "--model", "demo_net", "--weights", "w.pt", "--data", "demo", "--batch-size", "0"], "--batch-size"),
    (["eval", "--model", "demo_net", "--weights", "w.pt", "--data", "demo", "--batch-size", "10000000000"],
     "--batch-size"),
    (["eval", "--model", "demo_net", "--weights", "w.pt", "--data", "demo", "--workers", "100000"], "--workers"),
    (["nasb", "search", "--max-parameter-free", "-1", "--out", "never"], "--max-parameter-free -1"),
    (["dfq", "--batch-size", "1000000000000", "--out", "never"], "--batch-size"),
    (["dfq", "--calib-size", "1000000000", "--out", "never"], "--calib-size"),
    (["nasb", "train", "--channels", "100000", "--out", "never"], "--channels"),
    (["cost", "--model", "birealnet18", "--input", "3x100000x100000"], "--input"),
    (["cost", "--model", "birealnet18", "--layers", "100000000"], "--layers"),
])
def test_out_of_range_and_huge_sizes_are_refused_before_any_work(argv, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert needle in _error(capsys, argv)
    assert not (tmp_path / "never").exists()


# --- genotype JSON ------------------------------------------------------------------------------------------------
def _genotype_commands(path) -> list[list[str]]:
    return [["nasb", "train", "--genotype", str(path), "--quiet"], ["cost", "--genotype", str(path)],
            ["dfq", "--generator", str(path), *TINY]]


@pytest.mark.parametrize("content,needle", [
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"format": "nascomp-genotype", "x": "\xff\xfe"}', "not UTF-8"),
    (b'{"format": "nascomp-genotype", "version": true, "space": "nasb", "edges": {}}', "version True"),
    (b'{"format": "nascomp-genotype", "version": 1.0, "space": "nasb", "edges": {}}', "version 1.0"),
])
def test_hostile_genotype_json(content, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "genotype.json"
    path.write_bytes(content)
    for argv in _genotype_commands(path):
        assert needle in _error(capsys, argv), argv


def test_an_unreadable_genotype(tmp_path, capsys):
    if not UNREADABLE.exists():
        pytest.skip("no /proc/self/mem on this system")
    link = tmp_path / "genotype.json"
    link.symlink_to(UNREADABLE)
    assert "cannot be read" in _error(capsys, ["cost", "--genotype", str(link)])


# --- data -------------------------------------------------------------------------------------------------------
def test_unreadable_data_and_devices(weights, tmp_path, capsys):
    base = ["eval", "--model", "demo_net", "--weights", str(weights), "--data"]
    assert "neither a folder nor a regular file" in _error(capsys, [*base, "/dev/zero"])
    if UNREADABLE.exists():
        link = tmp_path / "data.tar"
        link.symlink_to(UNREADABLE)
        assert f"data {link} cannot be read" in _error(capsys, [*base, str(link)])
