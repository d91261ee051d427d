"""Damaged data is refused, never used in part: archives are verified completely before use and a partial
extraction is never cached; ImageFolder layouts that would give wrong labels are refused with one line."""

from __future__ import annotations

import errno
import gzip
import io
import os
import tarfile
import time

import pytest

from image_folders import write_image_folder
from nascomp.cache import cache_dir
from nascomp.cli import main
from nascomp.data import open_images
from nascomp.data.archive import sweep_stale
from nascomp.errors import DataError

CLASSES = ("ant", "bee", "cat")


def _folder(root, classes=CLASSES, per_class=2, size=8):
    return write_image_folder(root, classes, per_class, size)


def _tar_bytes(src, arcname="test") -> bytes:
    """A tar as GNU tar writes it (no pax header before each member)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.add(src, arcname=arcname)
    return buffer.getvalue()


def _cache_entries() -> list[str]:
    return sorted(p.name for p in cache_dir("archives").iterdir())


@pytest.fixture()
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NASCOMP_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _refused(path, needle: str) -> str:
    with pytest.raises(DataError) as info:
        open_images(str(path))
    message = str(info.value)
    assert needle in message and "\n" not in message, message
    return message


def test_a_damaged_member_header_refuses_the_archive_and_caches_nothing(tmp_path, fresh_cache):
    raw = bytearray(_tar_bytes(_folder(tmp_path / "src")))
    headers = [i for i in range(0, len(raw), 512) if raw[i + 257:i + 262] == b"ustar"]
    assert raw[headers[5]:headers[5] + 14] == b"test/bee/0.png"
    raw[headers[5] + 148:headers[5] + 156] = b"99999999"  # its checksum: tarfile's member list ends there silently
    archive = tmp_path / "damaged.tar.gz"
    archive.write_bytes(gzip.compress(bytes(raw)))
    _refused(archive, "broken member header")
    assert _cache_entries() == []


def test_a_gzip_crc_error_refuses_the_archive(tmp_path, fresh_cache):
    data = bytearray(gzip.compress(_tar_bytes(_folder(tmp_path / "src"))))
    data[-8] ^= 0xFF  # the CRC32 in the gzip trailer: only reading to the end of the stream checks it
    archive = tmp_path / "crc.tar.gz"
    archive.write_bytes(bytes(data))
    _refused(archive, "CRC check failed")
    assert _cache_entries() == []


def test_a_truncated_archive_is_refused(tmp_path, fresh_cache):
    raw = _tar_bytes(_folder(tmp_path / "src"))
    (tmp_path / "cut.tar.gz").write_bytes(gzip.compress(raw)[:-40])
    _refused(tmp_path / "cut.tar.gz", "broken or not a tar")
    headers = [i for i in range(0, len(raw), 512) if raw[i + 257:i + 262] == b"ustar"]
    (tmp_path / "cut.tar").write_bytes(raw[:headers[-1]])  # ends at a member boundary, no end marker
    _refused(tmp_path / "cut.tar", "end-of-archive marker")
    assert _cache_entries() == []


def test_a_full_cache_disk_says_disk_full_with_the_path_and_leaves_no_temporary_folder(tmp_path, fresh_cache,
                                                                                        monkeypatch):
    archive = tmp_path / "ok.tar"
    archive.write_bytes(_tar_bytes(_folder(tmp_path / "src")))
    written = []

    def full(self, tarinfo, targetpath):
        written.append(targetpath)
        if len(written) > 2:
            raise OSError(errno.ENOSPC, "No space left on device", targetpath)
        return make(self, tarinfo, targetpath)

    make = tarfile.TarFile.makefile
    monkeypatch.setattr(tarfile.TarFile, "makefile", full)
    message = _refused(archive, "disk full")
    assert str(fresh_cache / "archives") in message and "MiB free" in message and "broken" not in message
    assert _cache_entries() == []
    monkeypatch.setattr(tarfile.TarFile, "makefile", make)
    assert open_images(str(archive)).classes == list(CLASSES)  # the next try extracts it whole


def test_a_full_disk_while_caching_decoded_images_is_one_line(tmp_path, fresh_cache, monkeypatch):
    archive = tmp_path / "ok.tar"
    archive.write_bytes(_tar_bytes(_folder(tmp_path / "src")))

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    _refused(archive, "disk full")
    assert not [n for n in _cache_entries() if n.startswith(".") or n.endswith(".pt")]


def test_a_damaged_decoded_cache_entry_is_decoded_again(tmp_path, fresh_cache):
    archive = tmp_path / "ok.tar"
    archive.write_bytes(_tar_bytes(_folder(tmp_path / "src")))
    first = open_images(str(archive))
    (entry,) = [p for p in (fresh_cache / "archives").iterdir() if p.suffix == ".pt"]
    entry.write_bytes(entry.read_bytes()[:100])
    assert open_images(str(archive)).images.equal(first.images)


def test_temporary_folders_of_killed_extractions_are_swept_after_a_day(tmp_path):
    old, young = tmp_path / ".abc-old", tmp_path / ".abc-young"
    for p in (old, young):
        (p / "x").mkdir(parents=True)
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    assert sweep_stale(tmp_path, ".abc-") == [old]
    assert young.is_dir() and not old.exists()


def test_one_class_folder_is_refused(tmp_path):
    _refused(_folder(tmp_path / "one", classes=("cat",)), "one class folder only (cat)")
    archive = tmp_path / "one.tar"
    archive.write_bytes(_tar_bytes(_folder(tmp_path / "src", classes=("cat",))))
    _refused(archive, "one class folder only")


def test_a_single_top_folder_in_an_archive_is_unwrapped_and_an_extra_one_refused(tmp_path, fresh_cache):
    src = _folder(tmp_path / "src")
    archive = tmp_path / "wrapped.tar"
    archive.write_bytes(_tar_bytes(src, "test"))
    imageset = open_images(str(archive))
    assert imageset.classes == list(CLASSES) and imageset.labels.tolist() == [0, 0, 1, 1, 2, 2]
    _folder(tmp_path / "two" / "test")
    _folder(tmp_path / "two" / "extra", classes=("x", "y"))
    _refused(tmp_path / "two", "holds folders of images")
    _folder(tmp_path / "mac" / "test")
    _folder(tmp_path / "mac" / "__MACOSX" / "test")  # resource forks beside the real folder are ignored
    assert open_images(str(tmp_path / "mac")).classes == list(CLASSES)


def test_an_unreadable_class_folder_is_named(tmp_path, monkeypatch):
    root = _folder(tmp_path / "set")
    locked = root / "bee"
    scandir = os.scandir

    def denied(path="."):  # as root, chmod cannot lock a folder: refuse it the way the OS would
        if os.fspath(path) == os.fspath(locked):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", denied)
    _refused(root, f"class folder {locked} cannot be read")


def test_a_truncated_image_is_one_line(tmp_path):
    root = _folder(tmp_path / "set")
    png = root / "ant" / "0.png"
    png.write_bytes(png.read_bytes()[:60])
    _refused(root, f"image {png} cannot be")


@pytest.mark.parametrize("data", ["/dev/zero", "/dev/null"])
def test_a_device_as_data_is_one_line(data, capsys):
    assert main(["eval", "--model", "demo_net", "--weights", "none.pt", "--data", data]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
