#!/usr/bin/env python3
"""Which code of a running server is resident in memory, by crate.

Peak RSS counts the pages of the binary that the process has touched, and the kernel maps
code in runs of up to 64 KiB around each page fault ("fault-around"), so a larger binary
leaves more of itself resident. This script reads /proc/PID/pagemap (run it as root)
for every mapping of BINARY. It then shares out the resident pages among the binary's
symbols (`nm -S`) and adds them up by crate.

    target/release/rawgrpc serve --workers 1 & sleep 1
    sudo python3 benches/resident_code.py $! target/release/rawgrpc

docs/performance.md ("What is left", 500 connections) quotes its output.
"""
import collections
import re
import struct
import subprocess
import sys

PAGE = 4096


def resident_offsets(pid, binary):
    """Offsets (from the binary's load base) of the binary's pages that are present."""
    segments = []
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) >= 6 and fields[5] == binary:
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                segments.append((lo, hi, int(fields[2], 16)))
    if not segments:
        sys.exit(f"{binary} is not mapped by process {pid}")
    base = min(lo - offset for lo, _, offset in segments)
    present = set()
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for lo, hi, _ in segments:
            for addr in range(lo, hi, PAGE):
                pagemap.seek(addr // PAGE * 8)
                (entry,) = struct.unpack("<Q", pagemap.read(8))
                if entry >> 63:
                    present.add((addr - base) // PAGE)
    return present


def crate_of(symbol):
    symbol = re.sub(r"^_?<", "", symbol)
    match = re.match(r"([A-Za-z0-9_]+)::", symbol)
    return match.group(1) if match else "(other)"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    pid, binary = sys.argv[1], sys.argv[2]
    present = resident_offsets(pid, binary)
    nm = subprocess.run(["nm", "-C", "--defined-only", "-S", binary],
                        capture_output=True, text=True, check=True).stdout
    resident = collections.Counter()
    total = collections.Counter()
    for line in nm.splitlines():
        fields = line.split(None, 3)
        if len(fields) != 4 or fields[2] not in "tTrR":
            continue
        start, size = int(fields[0], 16), max(int(fields[1], 16), 1)
        kind = "code" if fields[2] in "tT" else "data"
        key = (kind, crate_of(fields[3]))
        pages = range(start // PAGE, (start + size - 1) // PAGE + 1)
        total[key] += size
        resident[key] += size * sum(p in present for p in pages) / len(pages)
    print(f"resident pages of {binary}: {len(present)} ({len(present) * PAGE // 1024} KiB)")
    print(f"{'resident KiB':>12} {'of KiB':>8}  kind crate")
    for (kind, crate), size in resident.most_common(25):
        print(f"{size / 1024:12.0f} {total[(kind, crate)] / 1024:8.0f}  {kind} {crate}")


if __name__ == "__main__":
    main()
