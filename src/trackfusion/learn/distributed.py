"""DistributedDataParallel helpers: launch under torchrun, process group, reductions.

A stage started as a plain process with `train.nproc > 1` re-launches itself with
`python -m torch.distributed.run`, so `dvc repro` runs DDP without a different
command. Under torchrun every rank runs the same code; only rank 0 writes outputs.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

log = logging.getLogger(__name__)


def under_torchrun() -> bool:
    """True in a process started by torchrun (it sets LOCAL_RANK and WORLD_SIZE)."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def rank_from_env() -> int:
    """This process's global rank as torchrun announces it (0 outside torchrun)."""
    return int(os.environ.get("RANK", "0"))


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def relaunch_with_torchrun(nproc: int, argv: Sequence[str] | None = None) -> int:
    """Run this script again under `torch.distributed.run` with `nproc` processes.

    Returns torchrun's exit code. The caller exits with it; rank processes see
    LOCAL_RANK and do not relaunch again.
    """
    argv = list(sys.argv if argv is None else argv)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        *argv,
    ]
    env = dict(os.environ)
    threads = int(env.get("OMP_NUM_THREADS") or os.cpu_count() or 1)
    env["OMP_NUM_THREADS"] = str(max(1, threads // nproc))  # the stage's threads shared out, not multiplied
    log.info("relaunching under torchrun with %d processes: %s", nproc, " ".join(cmd))
    return subprocess.call(cmd, env=env)


def init_process_group(device: torch.device) -> None:
    """Join torchrun's process group (gloo on CPU, nccl on CUDA) if not joined yet."""
    if is_distributed() or not under_torchrun():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group(backend=backend)
    log.info("rank %d of %d joined the %s process group", rank(), world_size(), backend)


def local_device(device: torch.device) -> torch.device:
    """Under torchrun on CUDA each rank takes the GPU of its LOCAL_RANK."""
    if device.type == "cuda" and under_torchrun():
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def destroy() -> None:
    if is_distributed():
        dist.barrier()
        dist.destroy_process_group()


def leave(status: int = 0) -> None:
    """End a torchrun process now, its outputs flushed, without the interpreter's C++ teardown: a gloo rank's
    threads could abort at exit ("terminate called without an active exception", seen once in CI after every
    file was written), and torchrun then fails the whole run."""
    import logging as _logging
    import sys

    _logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def all_reduce_sum(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Sum each value over all ranks (sums and counts, so a mean is never averaged twice)."""
    if not is_distributed() or not values:
        return dict(values)
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return dict(zip(keys, t.tolist()))


def any_rank(flag: bool, device: torch.device) -> bool:
    """True if `flag` is True on any rank (so all ranks take the same branch)."""
    if not is_distributed():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order (for accumulators that merge)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


class ShardSampler(Sampler[int]):
    """Rank r takes indices r, r + world, ...: every item exactly once over all ranks.

    Unlike DistributedSampler it never repeats items to even out the shards, so
    evaluation sums count every frame once. Ranks may get different numbers of
    batches, so evaluation must not run collective operations per batch.
    """

    def __init__(self, n: int, num_replicas: int, rank: int):
        self.n = n
        self.num_replicas = num_replicas
        self.rank = rank

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.n, self.num_replicas))

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.num_replicas))
