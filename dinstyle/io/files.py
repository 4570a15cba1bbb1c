"""Atomic file writes: a temp file in the same folder, then a rename."""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dinstyle.errors import InputError, OutputError


def check_input_file(path: Path, kind: str) -> Path:
    """Raise InputError unless ``path`` is an existing, non-empty file (``kind``: "image", "video")."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected {'an' if kind[0] in 'aeiou' else 'a'} {kind} file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file")
    return path


_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(dest: Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path next to ``dest``; rename it onto ``dest`` only if the block succeeds."""
    dest = Path(dest)
    parent = dest.parent if str(dest.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix or dest.suffix or ".tmp", dir=parent)
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
        os.close(fd)
    except OSError as e:
        raise OutputError(f"{dest}: cannot write here ({e.strerror or e})") from None
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # writers that recreate the file (safetensors) reset it
        os.replace(tmp_path, dest)
    except OSError as e:
        tmp_path.unlink(missing_ok=True)
        raise OutputError(f"{dest}: could not be written ({e.strerror or e})") from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_bytes(dest: Path, data: bytes) -> None:
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def remove_stale_temps(dests) -> int:
    """Delete temp files that interrupted (killed) earlier writes of ``dests`` left behind.
    Each output folder is listed once, however many outputs it holds."""
    dests = [Path(dests)] if isinstance(dests, (str, Path)) else [Path(d) for d in dests]
    by_folder: dict[Path, set[str]] = {}
    for d in dests:
        by_folder.setdefault(d.parent, set()).add(d.name)
    n = 0
    for folder, names in by_folder.items():
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            rest = p.name[1:]
            # temp names are ".<output name>.<random><suffix>": try every dot as the end of the name
            if p.name.startswith(".") and any(rest[:i] in names for i, ch in enumerate(rest) if ch == "."):
                try:
                    p.unlink()
                    n += 1
                except OSError:
                    pass
    return n
