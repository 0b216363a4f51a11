"""Summarise a ``py-spy record -f raw --threads`` profile by thread role.

Usage::

    python bench/profile_roles.py PROFILE.txt [--top 15]

A backfill runs a main thread, one writer thread per worker (``backfill_N``) and
one page reader per worker (``fetch-<table>``); py-spy names each thread by id,
so a summary per thread scatters one role over dozens of lines. This folds the
threads into roles and prints, per role, the frames most often on top of the
stack (self) and anywhere in it (inclusive), as shares of that role's samples.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict


def role_of(thread: str) -> str:
    """``thread (1234): backfill_0`` -> ``backfill``; ``fetch-case`` -> ``fetch``."""
    name = re.sub(r"^thread \(\d+\): ", "", thread)
    return re.split(r"[-_]", name, maxsplit=1)[0]


def frame_name(frame: str) -> str:
    return re.sub(r":\d+\)", ")", frame)


def summarise(lines: list[str]) -> dict[str, tuple[int, Counter, Counter]]:
    totals: Counter[str] = Counter()
    own: defaultdict[str, Counter[str]] = defaultdict(Counter)
    anywhere: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        role, samples = role_of(frames[0]), int(count)
        totals[role] += samples
        own[role][frame_name(frames[-1])] += samples
        for frame in {frame_name(f) for f in frames[1:]}:
            anywhere[role][frame] += samples
    return {role: (total, own[role], anywhere[role]) for role, total in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    with open(args.profile, encoding="utf-8") as handle:
        roles = summarise(handle.readlines())
    for role, (total, own, anywhere) in sorted(roles.items(), key=lambda r: -r[1][0]):
        print(f"===== {role}: {total} samples")
        for frame, samples in own.most_common(args.top):
            print(f"  self {samples / total:6.1%} {frame}")
        for frame, samples in anywhere.most_common(args.top * 3):
            print(f"  incl {samples / total:6.1%} {frame}")


if __name__ == "__main__":
    main()
