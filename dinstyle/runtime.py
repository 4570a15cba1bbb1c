"""Device and dtype selection, and process-level tuning shared by the engine and training."""
from __future__ import annotations

import ctypes
import sys

import torch

from dinstyle.errors import OptionError
from dinstyle.io import memory

DTYPES = {"auto": None, "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
_tuned = False


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            return next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                        platform.processor() or "CPU")
    except OSError:
        return platform.processor() or "CPU"


def tune_allocator() -> None:
    """Keep freed large blocks in the heap (glibc). Without this every full-size temporary is
    handed back to the OS and page-faulted in again: measured 53 ms -> 9 ms for one 1080p add."""
    global _tuned
    if _tuned or not sys.platform.startswith("linux"):
        return
    _tuned = True
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD: blocks under 1 GiB come from the heap
        libc.mallopt(-1, 1 << 31)  # M_TRIM_THRESHOLD: do not give the heap back eagerly
    except (OSError, AttributeError):
        pass


def resolve_device(name: str = "auto") -> torch.device:
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise OptionError(f"--device {name}: CUDA is not available on this machine (use cpu or auto)")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise OptionError(f"--device {name}: unknown device (use auto, cpu, cuda or cuda:N)")


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """Compute dtype: fp16 on CUDA by default, fp32 on CPU (bf16 only if asked)."""
    name = (name or "auto").lower()
    if name not in DTYPES:
        raise OptionError(f"--dtype {name}: unknown (use {', '.join(DTYPES)})")
    if name == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if device.type == "cpu" and name == "fp16":
        raise OptionError("--dtype fp16 is for GPUs; on the CPU use fp32 or bf16")
    return DTYPES[name]


def is_out_of_memory(e: BaseException) -> bool:
    """CUDA out of memory, a MemoryError, or the RuntimeError torch raises when a CPU allocation fails."""
    return isinstance(e, torch.OutOfMemoryError) or memory.is_out_of_memory(e)
