"""Process-level settings for fast CPU training: torch threads and glibc's allocator.

glibc serves every allocation above its mmap threshold (dynamic, at most 32 MiB) with a fresh
mmap and unmaps it on free, so each update's large activations page-fault again (a 256-frame
float batch costs ~40 ms to touch instead of ~5 ms to reuse). Raising the mmap and trim
thresholds keeps those blocks in the heap. Ignored where glibc is absent.
"""
import ctypes
import ctypes.util

import torch

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_malloc(mmap_threshold_bytes: int = 32 << 20, trim_threshold_bytes: int = 1 << 30
                ) -> bool:
    """Keep large blocks in glibc's heap; True if glibc accepted both settings."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold_bytes)
                    and libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold_bytes))
    except (OSError, AttributeError):
        return False


def configure_process(num_threads: int) -> None:
    """Torch intra-op threads (>= 1) and the allocator tuning above."""
    torch.set_num_threads(max(1, num_threads))
    tune_malloc()
