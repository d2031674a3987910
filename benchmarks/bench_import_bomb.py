"""What a hostile upload costs the server: issue 21's ZIP bomb and its cousins, loaded in this process.

Each file is handed to ``lab.serving.export.load_runs`` (the upload box's reader); the script prints how it was
refused, the seconds (wall and CPU) and tracemalloc's peak until then.

- alone: a ZIP whose runs.json holds 62 MB of zeros (deflated to about 62 kB), and nothing else;
- listed: the same beside an export's config.json of one small run (what bounds runs.json);
- lying: as listed, with the central directory claiming runs.json is 100 bytes;
- maximal: beside a config.json listing 100 runs of depth 500 and 100,000 epochs (the bound is then
  the absolute cap of 64 MB), runs.json of 62 MB of zeros, then of "0," 31 million times.

    python benchmarks/bench_import_bomb.py            # all; or name some: alone listed lying maximal
"""
from __future__ import annotations

import io
import json
import struct
import sys
import time
import tracemalloc
import zipfile

from lab.serving.export import ImportFormatError, load_runs

MB = 2**20
ZEROS = b"0" * (62 * MB)
ONE_RUN = json.dumps({"format": 1, "runs": [{"run": "r", "config": {"epochs": 10, "depth": 3}, "result": {}}]})
MOST = json.dumps({"format": 1, "runs": [{"run": f"r{i}", "config": {"epochs": 100_000, "depth": 500, "width": 8},
                                          "result": {}} for i in range(100)]})


def zipped(runs_json: bytes, config_json: str | None, lie: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("runs.json", runs_json)
        if config_json is not None:
            z.writestr("config.json", config_json)
    raw = bytearray(buf.getvalue())
    if lie:
        central = raw.find(b"PK\x01\x02")
        raw[central + 24 : central + 28] = struct.pack("<I", 100)
    return bytes(raw)


def measure(label: str, raw: bytes) -> None:
    tracemalloc.start()
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        load_runs(raw)
        outcome = "LOADED (!)"
    except ImportFormatError as exc:
        outcome = f"refused: {exc}"
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"{label}: {len(raw) / 1024:.0f} kB, {outcome}; {wall:.2f} s wall, {cpu:.2f} s CPU, peak {peak / MB:.1f} MB")


CASES = {
    "alone": lambda: [("alone", zipped(ZEROS, None))],
    "listed": lambda: [("listed", zipped(ZEROS, ONE_RUN))],
    "lying": lambda: [("lying", zipped(ZEROS, ONE_RUN, lie=True))],
    "maximal": lambda: [("maximal, zeros", zipped(ZEROS, MOST)),
                        ("maximal, '0,' x 31M", zipped(b"0," * (31 * MB), MOST))],
}


def main(names: list[str]) -> None:
    for name in names or list(CASES):
        for label, raw in CASES[name]():
            measure(label, raw)


if __name__ == "__main__":
    main(sys.argv[1:])
