"""Slow, obviously right reference implementations that the fast ones are tested against."""
from __future__ import annotations


def ref_f1(tp: int, fp: int, fn: int) -> float:
    return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def ref_max_matching(pred: list[int], true: list[int], tol: int) -> int:
    """Maximum bipartite matching (Kuhn's augmenting paths) of cuts within +-tol."""
    owner: dict[int, int] = {}

    def augment(i: int, seen: set[int]) -> bool:
        for j, p in enumerate(pred):
            if abs(p - true[i]) <= tol and j not in seen:
                seen.add(j)
                if j not in owner or augment(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    return sum(augment(i, set()) for i in range(len(true)))


def ref_state(row: list[float]) -> tuple[set[int], dict[int, int]]:
    active = {n for n in range(len(row) // 9) if row[n * 9] > 0.5}
    return active, {n: round(row[n * 9 + 1]) for n in active}


def ref_cut(cur: list[float], prev: list[float]) -> bool:
    a, assets = ref_state(cur)
    pa, passets = ref_state(prev)
    return a != pa or any(assets[n] != passets[n] for n in a)
