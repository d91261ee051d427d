"""All-or-nothing extraction of an image archive (``.tar``, ``.tar.gz``) into the cache.

An archive is used only when it was read completely and without fault:

- every member is extracted (a member whose data ends early is an error, not a short file);
- after the last member, the archive must hold only its end-of-archive marker (zero blocks): ``tarfile``
  ends its member list silently at a damaged header, so non-zero bytes there mean members were lost;
- the compressed stream is read to its end, which makes ``gzip`` check its CRC and length.

Extraction goes to a temporary folder beside the cache entry, which is renamed into place only on success;
whatever happens otherwise (a broken archive, a full disk, Ctrl-C), the temporary folder is removed, so a
partial extraction is never cached. Temporary folders of killed processes are swept after a day.
"""

from __future__ import annotations

import errno
import os
import shutil
import tarfile
import tempfile
import time
import zlib
from pathlib import Path

from ..errors import DataError

WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}
STALE_SECONDS = 24 * 3600  # a temporary folder this old belongs to a process that was killed
# what tarfile, gzip, bz2 and lzma raise for damaged input (gzip.BadGzipFile is an OSError without errno)
READ_ERRORS: tuple[type[BaseException], ...] = (tarfile.TarError, EOFError, zlib.error, ValueError, OSError)
try:
    import lzma

    READ_ERRORS += (lzma.LZMAError,)
except ImportError:  # pragma: no cover - Python built without lzma
    pass


def extract_verified(path: Path, target: Path) -> None:
    """Extract the tar archive ``path`` into the new folder ``target`` (safe ``filter="data"``), verified as
    the module docstring says; raise a one-line :class:`DataError` for a damaged archive or a full disk."""
    sweep_stale(target.parent, f".{target.name}-")
    needed = 0
    tmp: Path | None = None
    try:
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
        with tarfile.open(path) as tar:
            members = tar.getmembers()
            needed = sum(m.size for m in members if m.isfile())
            tar.extractall(tmp, members=members, filter="data")
            _check_end(tar, path, members)
        try:
            os.replace(tmp, target)
            tmp = None
        except OSError:  # another process extracted the same archive meanwhile: use its copy
            if not target.is_dir():
                raise
    except OSError as e:
        if e.errno in WRITE_ERRNOS:
            raise disk_error(e, target.parent, needed, f"archive {path} cannot be extracted into") from None
        raise _broken(path, e) from None
    except READ_ERRORS as e:
        raise _broken(path, e) from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _check_end(tar: tarfile.TarFile, path: Path, members: list[tarfile.TarInfo]) -> None:
    """After the last member only zero blocks may follow; read them to the end of the (compressed) stream."""
    f = tar.fileobj
    assert f is not None
    f.seek(tar.offset)
    zeros = 0
    while chunk := f.read(1 << 20):
        if chunk.count(0) != len(chunk):
            after = f"after member {members[-1].name!r}" if members else "at its start"
            raise DataError(f"archive {path} is damaged {after} (a broken member header at byte {tar.offset} of "
                            f"the tar stream; {len(members)} members read before it); re-download or re-create it")
        zeros += len(chunk)
    if zeros < tarfile.BLOCKSIZE:
        raise DataError(f"archive {path} ends without its end-of-archive marker (truncated after "
                        f"{len(members)} members?); re-download or re-create it")


def _broken(path: Path, e: BaseException) -> DataError:
    if isinstance(e, DataError):
        return e
    reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return DataError(f"archive {path} is broken or not a tar ({reason[:160]}); re-download or re-create it")


def disk_error(e: OSError, folder: Path, needed: int, what: str) -> DataError:
    """One line for a failed write into the cache: the path, the free space there and the space needed."""
    try:
        free = f"{shutil.disk_usage(folder).free / 2**20:.0f} MiB free"
    except OSError:
        free = "free space unknown"
    need = f", about {needed / 2**20:.0f} MiB needed" if needed else ""
    full = e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    problem = "disk full" if full else (e.strerror or type(e).__name__)
    fix = "free some space" if full else "fix its permissions"
    return DataError(f"{what} {folder} ({problem}; {free}{need}); {fix} or set NASCOMP_CACHE to another folder")


def sweep_stale(folder: Path, prefix: str, max_age: float = STALE_SECONDS) -> list[Path]:
    """Remove temporary entries ``prefix*`` in ``folder`` older than ``max_age`` seconds (left by killed
    processes; younger ones may belong to a process still extracting)."""
    removed = []
    now = time.time()
    for p in folder.glob(f"{prefix}*"):
        try:
            if now - p.lstat().st_mtime > max_age:
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
                removed.append(p)
        except OSError:
            continue
    return removed
