"""Atomic file writes (a temp file in the same folder, then a rename), input-file checks and
the clean-up of temp files that killed runs left behind."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dinstyle.errors import InputError, OutputError

NAME_MAX = 255  # bytes in one file name (Linux, macOS)


def q(path) -> str:
    """A file name for a one-line message: as it is, or quoted with escapes when it holds a newline,
    another control character or leading/trailing blanks (so it cannot split or fake a line)."""
    s = str(path)
    return s if s and s.isprintable() and s.strip() == s else repr(s)


def _stat_problem(path: Path, e: OSError) -> str:
    """Why ``path`` could not be opened, in words (a symlink loop is not a missing file)."""
    if e.errno == errno.ENOENT:
        if os.path.islink(path):
            return f"broken symbolic link (points to {q(os.readlink(path))})"
        return "no such file"
    return {errno.ELOOP: "symbolic link loop", errno.EACCES: "permission denied",
            errno.ENAMETOOLONG: "file name too long", errno.ENOTDIR: "no such file (a parent is not a folder)",
            }.get(e.errno, e.strerror or str(e))


def path_problem(path: str | Path) -> str | None:
    """None if ``path`` can be looked up, else a one-line reason (for inputs that are not found)."""
    try:
        os.stat(path)
    except OSError as e:
        return f"{q(path)}: {_stat_problem(Path(path), e)}"
    except ValueError:  # an embedded NUL byte
        return f"{q(path)}: invalid file name"
    return None


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def check_input_file(path: Path, kind: str) -> Path:
    """Raise InputError unless ``path`` is an existing, non-empty regular file (``kind``: "image", "video")."""
    path = Path(path)
    try:
        st = os.stat(path)
    except OSError as e:
        raise InputError(f"{q(path)}: {_stat_problem(path, e)}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{q(path)}: is a folder, expected {'an' if kind[0] in 'aeiou' else 'a'} {kind} file")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{q(path)}: is {_file_kind(st.st_mode)}, not a regular file; give {kind} files")
    if st.st_size == 0:
        raise InputError(f"{q(path)}: empty file")
    return path


def check_output_path(path: str | Path) -> Path:
    """Refuse an output path the file system cannot hold (a name over 255 bytes) before any work."""
    path = Path(path)
    for part in path.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise OutputError(f"{q(path)}: file name too long ({len(os.fsencode(part))} bytes in one name; "
                              f"the limit is {NAME_MAX})")
    if len(os.fsencode(str(path))) >= 4096:
        raise OutputError(f"{q(path)}: path too long")
    return path


_UMASK = os.umask(0)
os.umask(_UMASK)


# Temp files carry a marker, this machine and this process: ".<name>.dinstyle-<host>-<pid>-<random><suffix>".
# Only such a file whose writer is provably gone (same machine, process not alive) is ever removed.
TEMP_MARK = "dinstyle"
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
_TEMP_RE = re.compile(r"^\.(?P<name>.*)\." + TEMP_MARK + r"-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[a-z0-9_]{8}(\.[^.]*)?$",
                      re.DOTALL)


def _temp_prefix(name: str, suffix: str) -> str:
    """``.<name>.dinstyle-<host>-<pid>-``, the name cut short if the whole would not fit NAME_MAX."""
    tail = f".{TEMP_MARK}-{_HOST}-{os.getpid()}-"
    room = NAME_MAX - len(os.fsencode(tail + suffix)) - 8 - 1  # 8 random characters, the leading dot
    while len(os.fsencode(name)) > room:
        name = name[:-1]
    return f".{name}{tail}"


@contextlib.contextmanager
def atomic_path(dest: Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path next to ``dest``; rename it onto ``dest`` only if the block succeeds."""
    dest = check_output_path(dest)
    parent = dest.parent if str(dest.parent) else Path(".")
    suffix = suffix or dest.suffix or ".tmp"
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(dest.name, suffix), suffix=suffix, dir=parent)
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
        os.close(fd)
    except OSError as e:
        raise OutputError(f"{q(dest)}: cannot write here ({e.strerror or e})") from None
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # writers that recreate the file (safetensors) reset it
        os.replace(tmp_path, dest)
    except OSError as e:
        tmp_path.unlink(missing_ok=True)
        raise OutputError(f"{q(dest)}: could not be written ({e.strerror or e})") from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_bytes(dest: Path, data: bytes) -> None:
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def _writer_gone(host: str, pid: int) -> bool:
    """True only when the process that made a temp file provably no longer runs."""
    if host != _HOST or pid == os.getpid():
        return False  # another machine (shared folder) cannot be checked; our own temps are in use
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, owned by someone else
        return False
    return False


def remove_stale_temps(dests) -> int:
    """Delete the temp files that killed earlier writes of ``dests`` left behind: only files named
    by ``atomic_path`` (marker, machine, process id) whose writer no longer runs. A user's
    ``.photo.jpg.swp`` and a concurrent run's temp are left alone. Each folder is listed once."""
    dests = [Path(dests)] if isinstance(dests, (str, Path)) else [Path(d) for d in dests]
    by_folder: dict[Path, set[str]] = {}
    for d in dests:
        by_folder.setdefault(d.parent, set()).add(d.name)
    n = 0
    for folder, names in by_folder.items():
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            m = _TEMP_RE.match(entry.name)
            if not m or not any(name.startswith(m["name"]) for name in names):  # the name may be cut short
                continue
            try:
                if not entry.is_file(follow_symlinks=False) or not _writer_gone(m["host"], int(m["pid"])):
                    continue
                os.unlink(entry.path)
                n += 1
            except OSError:
                pass
    return n
