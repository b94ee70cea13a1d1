"""Shared pieces of the archive extractor: the limits, the per-file budget, the Member record
and the problem texts every format reports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

CHUNK = 64 * 1024  # output produced per decompression step: bounds memory per step


@dataclass(frozen=True)
class ArchiveLimits:
    """Defaults follow clamscan: --max-recursion 17, --max-files 10000, --max-scansize 400M,
    --max-filesize 100M; a member over ratio_min_size inflating more than max_ratio:1 is a bomb."""

    max_depth: int = 17
    max_files: int = 10_000
    max_total_bytes: int = 400 * 2**20
    max_member_bytes: int = 100 * 2**20
    max_ratio: float = 100.0
    ratio_min_size: int = 1 * 2**20


class Budget:
    """What one top-level file's whole recursion has consumed (shared across all depths)."""

    __slots__ = ("files", "limits", "total_bytes")

    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.files = 0
        self.total_bytes = 0

    def problem(self, member_size: int, added: int) -> str:
        """Why a member of `member_size` bytes, adding `added` to the total, may not be kept."""
        if member_size > self.limits.max_member_bytes:
            return too_large(member_size, self.limits)
        if self.total_bytes + added > self.limits.max_total_bytes:
            return "limit: max-total-bytes"
        return ""

    def take(self, held: int, n: int) -> None:
        """Account `n` more output bytes of a member already `held` long, or raise Stop."""
        if problem := self.problem(held + n, n):
            raise Stop(problem)
        self.total_bytes += n


@dataclass(slots=True)
class Member:
    """One regular file inside an archive; `data` is None when it was not extracted."""

    name: str
    data: bytes | None
    size: int
    problem: str = ""


class Stop(Exception):
    """A limit or bomb check fired; `problem` is the Member.problem text."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def human(n: int) -> str:
    for unit, div in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if n >= div:
            return f"{n / div:.0f} {unit}"
    return f"{n} B"


def too_large(size: int, limits: ArchiveLimits) -> str:
    return f"too-large: {human(size)} > {human(limits.max_member_bytes)}"


def ratio_bomb(out: int, packed: int) -> str:
    return f"bomb: ratio {out // max(packed, 1)}:1 ({human(out)}+ from {human(packed)})"


def inflates_too_much(out: int, packed: int, limits: ArchiveLimits) -> bool:
    """The bomb rule: past ratio_min_size, output may not outgrow the packed bytes max_ratio:1."""
    return out > limits.ratio_min_size and out > limits.max_ratio * max(packed, 1)


def check_ratio(out: int, packed: int, limits: ArchiveLimits) -> None:
    if inflates_too_much(out, packed, limits):
        raise Stop(ratio_bomb(out, packed))


def collect(
    read: Callable[[int], bytes], limits: ArchiveLimits, budget: Budget
) -> tuple[bytes | None, str]:
    """Read a member to its end under the member and total limits. Returns (data, problem): a
    decompression error keeps what was read before it (a scanner still wants to look at it)."""
    buf = bytearray()
    problem = ""
    while True:
        try:
            chunk = read(CHUNK)
        except Stop:
            raise
        except Exception as e:  # every decoder has its own error types; all mean a bad archive
            problem = f"corrupt: {type(e).__name__}: {e}"
            break
        if not chunk:
            break
        budget.take(len(buf), len(chunk))
        buf += chunk
    if problem and not buf:
        return None, problem
    return bytes(buf), problem


def admit(name: str, size: int, limits: ArchiveLimits, budget: Budget) -> Member | None:
    """Count one member against the budget; a Member to yield instead of extracting, or None."""
    if budget.files >= limits.max_files:
        return Member(name, None, size, "limit: max-files")
    budget.files += 1
    return fits(name, size, budget)


def fits(name: str, size: int, budget: Budget) -> Member | None:
    """A Member to yield instead of extracting one of declared `size`, or None if it fits."""
    problem = budget.problem(size, size)
    return Member(name, None, size, problem) if problem else None


def ends_archive(problem: str) -> bool:
    return problem.startswith("limit:")
