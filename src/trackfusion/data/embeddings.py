"""CLIP embeddings: one L2 normalisation, run on one thread.

Alignment normalises the CLIP vectors it gathers (and interpolates), normalisation
re-normalises them after the float16 round trip; both use :func:`normalise_rows_`, so
"unit length" means the same thing at both ends.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
import torch


@contextlib.contextmanager
def single_torch_thread() -> Iterator[None]:
    """Run CLIP gathers and normalisations on one thread.

    They are memory-bound, so a second thread buys little; and on shared or busy cores
    every parallel region waits for a descheduled thread (measured: 15 ms per block op
    with two threads under load against 0.2 ms with one).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def normalise_rows_(u: torch.Tensor) -> np.ndarray:
    """Divide each row of `u` (B, 512) float32 by its L2 norm in place; a row without a
    finite, non-zero norm becomes 0. Returns (B,) bool: the row had a direction."""
    nrm = torch.linalg.vector_norm(u, dim=1, keepdim=True)  # (B, 1)
    good = torch.isfinite(nrm[:, 0]) & (nrm[:, 0] > 0)  # (B,)
    if not bool(good.all()):
        nrm[~good] = 1.0
        u[~good] = 0.0
    u.div_(nrm)
    return good.numpy()


def l2_normalize(clip: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length in float32 (rows without a direction become zero); a new
    array of the input's dtype."""
    arr = np.ascontiguousarray(clip)
    with single_torch_thread():
        x = torch.from_numpy(arr if arr.flags.writeable else arr.copy())  # torch wants a writable buffer
        x = x.float().clone() if x.dtype == torch.float32 else x.float()  # never the caller's memory
        normalise_rows_(x)  # torch casts float16 far faster than numpy
        return x.to(torch.from_numpy(np.zeros(0, arr.dtype)).dtype).numpy()
