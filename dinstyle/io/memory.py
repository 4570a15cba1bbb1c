"""How much memory this process may still allocate, so that work too large to fit is refused with
one line before it starts instead of ending in a MemoryError. No torch here."""
from __future__ import annotations

import resource

GB = 1 << 30


def _read_kb(path: str, key: str) -> int | None:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
        return None if text == "max" else int(text)
    except (OSError, ValueError):
        return None


def available_memory() -> int | None:
    """Bytes that can still be allocated: the least of free RAM (MemAvailable), the address-space
    and data limits (``ulimit -v``/``-d``) minus what is already mapped, and the cgroup limit minus its
    usage. None when nothing can be read (not Linux)."""
    found = []
    free = _read_kb("/proc/meminfo", "MemAvailable")
    if free is not None:
        found.append(free)
    for limit, key in ((resource.RLIMIT_AS, "VmSize"), (resource.RLIMIT_DATA, "VmData")):
        try:
            soft = resource.getrlimit(limit)[0]
        except (OSError, ValueError):
            continue
        used = _read_kb("/proc/self/status", key)
        if soft != resource.RLIM_INFINITY and used is not None:
            found.append(max(0, soft - used))
    cap, used = _read_int("/sys/fs/cgroup/memory.max"), _read_int("/sys/fs/cgroup/memory.current")
    if cap is not None and used is not None:
        found.append(max(0, cap - used))
    return min(found) if found else None


def fits(need: int) -> bool:
    avail = available_memory()
    return avail is None or need <= avail


def describe(need: int) -> str:
    """"needs about 4.2 GB of memory, 1.9 GB available"."""
    avail = available_memory()
    return f"needs about {need / GB:.1f} GB of memory, {'?' if avail is None else f'{avail / GB:.1f}'} GB available"


def is_out_of_memory(e: BaseException) -> bool:
    """A MemoryError, or the RuntimeError torch raises when a CPU allocation fails."""
    return isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and "can't allocate memory" in str(e))
