#!/usr/bin/env python3
"""
What a permessage-deflate policy gives and costs when sending: compression
ratio and CPU per message, measured on the server's codec alone.

Three message streams, each sent on one connection in order: the 1 KiB
JSON of C{bench/deflate_memory.py} repeated, and distinct 1 KiB and 4 KiB
JSON records like the load generator's C{--json} payload. Each stream is
compressed with context takeover (what a browser's offer gets) and
without (what C{server_no_context_takeover} gets, as the load generator
asks).

    python bench/deflate_ratio.py
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from deflate_memory import message  # noqa: E402

from wsproto_tw.core.deflate import DeflateCodec  # noqa: E402


def records(size: int, count: int, seed: int = 19) -> list[bytes]:
    """
    C{count} distinct JSON texts of C{size} bytes, records as the load
    generator's C{--json} makes them, each starting with a sequence number.
    """
    rnd = random.Random(seed)
    kinds = ["sensor", "gateway", "meter", "pump", "valve"]
    out = []
    for seq in range(count):
        text = ""
        while len(text) < size:
            text += (
                f'{{"id":{rnd.randrange(100000)},"kind":"{rnd.choice(kinds)}",'
                f'"value":{rnd.randrange(1000)}.{rnd.randrange(100):02d},"unit":"kPa","ok":true}},'
            )
        out.append(f"{seq:016x}".encode() + text[16:size].encode())
    return out


#: name -> DeflateCodec arguments beyond the window
POLICIES = {
    "compressor kept (before)": {"context_size": None},
    "context 4096 B (default)": {"context_size": 4096},
    "context 1024 B": {"context_size": 1024},
    "context 0 (none)": {"context_size": 0},
}


def run(messages: list[bytes], takeover: bool, arguments: dict) -> tuple[float, float]:
    """
    @return: the compression ratio (bytes in over bytes out) and the CPU
        microseconds per message, the least of three runs (other work on
        the machine only ever adds time).
    """
    costs = []
    for _ in range(3):
        codec = DeflateCodec(
            local_window_bits=15, local_context_takeover=takeover,
            peer_window_bits=15, peer_context_takeover=False, **arguments,
        )
        started = time.process_time()
        out = sum(len(codec.compress(m)[0]) for m in messages)
        costs.append(time.process_time() - started)
    return sum(map(len, messages)) / out, min(costs) / len(messages) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--messages", type=int, default=2000)
    args = parser.parse_args(argv)
    streams = {
        "1 KiB JSON, repeated": [message(1024)] * args.messages,
        "1 KiB JSON, distinct": records(1024, args.messages),
        "4 KiB JSON, distinct": records(4096, args.messages),
        "64 B JSON, distinct": records(64, args.messages),
    }
    print(f"{'stream':<22} {'policy':<26} {'takeover':<9} {'ratio':>7} {'us/msg':>7}")
    for stream, messages in streams.items():
        for name, arguments in POLICIES.items():
            for takeover in (True, False):
                if not takeover and arguments["context_size"] is not None:
                    continue  # without takeover every policy compresses alike
                ratio, cost = run(messages, takeover, arguments)
                label = name if takeover else "no context takeover"
                print(f"{stream:<22} {label:<26} {str(takeover):<9} {ratio:>7.2f} {cost:>7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
