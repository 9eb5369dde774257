"""Benchmark 1: the capture mechanism's cost on a small function.

python bench/call_overhead.py [--quick] [--json out.json]
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import anycapture_peer, interleaved, parse_args, report


def make(body_name: str) -> Callable[[int, int], int]:
    def small(a: int, b: int) -> int:
        attn = a * b + 1
        return attn

    small.__qualname__ = body_name
    return small


def main() -> None:
    args = parse_args(__doc__ or "")
    from anycapture.decorator import GetLocal

    ours = GetLocal()
    plain = make("plain")
    inactive = ours("attn")(make("ours_inactive"))
    active_ours = GetLocal()
    active = active_ours("attn")(make("ours_active"))
    active_ours.activate(max_calls=1000)
    variants = {"undecorated": plain, "ours inactive": inactive, "ours active": active}
    peer = None if args.no_peers else anycapture_peer()
    if peer is not None:
        peer_inactive = peer.get_local("attn")(make("peer_inactive"))
        variants["AnyCapture 0.1.4 inactive"] = peer_inactive
        peer_active_cls = type("peer_active_get_local", (peer.get_local,), {"cache": {}})
        peer_active = peer_active_cls("attn")(make("peer_active"))
        peer_active_cls.activate(max_size=1000)
        variants["AnyCapture 0.1.4 active"] = peer_active
    number, rounds = (2_000, 3) if args.quick else (200_000, 9)
    # min: other load on the machine only ever adds time to a loop this short
    results = interleaved(variants, rounds=rounds, number=number, args=(3, 4), statistic=min)
    report(
        "call overhead of a small function f(a, b): attn = a * b + 1 (per call, bounded cache)",
        results,
        "undecorated",
        "ns",
        args,
    )


if __name__ == "__main__":
    main()
