"""国密 crypto throughput of our backends next to `openssl speed` run in the same invocation.

    .venv/bin/python bench/crypto.py

Targets (issue 3): SM2 sign and verify >= 0.7x OpenSSL's figure, SM3 (1 KiB) >= 0.6x. Runs in ~40 s.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without install

from provenance.crypto import (
    SM2PrivateKey,
    available_backends,
    generate_sm4_key,
    sm3,
    sm4_gcm_encrypt,
)

SECONDS = 3.0
MSG20 = b"x" * 20  # `openssl speed sm2` signs 20-byte inputs
KIB = bytes(range(256)) * 4

TARGETS = {"sm2 sign": 0.7, "sm2 verify": 0.7, "sm3 1KiB": 0.6}


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per CPU-second of fn, run for about ``seconds`` of wall time after a short warm-up.

    CPU time, not wall time, because that is `openssl speed`'s default divisor (user CPU time): on a
    shared machine other processes then skew neither figure.
    """
    end = time.perf_counter() + min(0.3, seconds / 5)
    while time.perf_counter() < end:
        fn()
    n = 0
    batch = 1
    start, cpu_start = time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        for _ in range(batch):
            fn()
        n += batch
        batch = min(batch * 2, 1024)
    return n / (time.process_time() - cpu_start)


def openssl_speed(seconds: int) -> dict[str, float]:
    """sm2 sign/s, verify/s and sm3 1 KiB ops/s (per user CPU-second) from one `openssl speed` run."""
    if shutil.which("openssl") is None:
        return {}
    out = subprocess.run(
        ["openssl", "speed", "-seconds", str(seconds), "-bytes", "1024", "-evp", "sm3", "sm2"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    res: dict[str, float] = {}
    m = re.search(r"^sm3\s+([\d.]+)k\s*$", out, re.MULTILINE)
    if m:
        res["sm3 1KiB"] = float(m.group(1)) * 1000 / 1024  # figures are 1000s of bytes per second
    m = re.search(r"SM2 \(CurveSM2\)\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)", out)
    if m:
        res["sm2 sign"] = float(m.group(1))
        res["sm2 verify"] = float(m.group(2))
    return res


def measure_ours(seconds: float) -> dict[str, dict[str, float]]:
    ours: dict[str, dict[str, float]] = {}
    for b in available_backends():
        secs = seconds if b == "openssl" else seconds / 3  # the pure-Python fallback needs no long run
        key = SM2PrivateKey.generate(backend=b)
        pub = key.public_key()
        sig = key.sign(MSG20)
        ours[b] = {
            "sm2 sign": rate(functools.partial(key.sign, MSG20), secs),
            "sm2 verify": rate(functools.partial(pub.verify, MSG20, sig), secs),
        }
    ours["cryptography"] = {"sm3 1KiB": rate(functools.partial(sm3, KIB), seconds)}
    return ours


def main() -> int:
    t0 = time.perf_counter()
    # Half of our runs before `openssl speed`, half after, averaged: on a shared machine the load drifts,
    # and this keeps both figures centred on the same moment.
    first = measure_ours(SECONDS / 2)
    ref = openssl_speed(int(SECONDS))
    second = measure_ours(SECONDS / 2)
    ours = {b: {op: (v + second[b][op]) / 2 for op, v in ops.items()} for b, ops in first.items()}
    k4 = generate_sm4_key()
    sm4_rate = rate(functools.partial(sm4_gcm_encrypt, k4, KIB), 1.0)

    print(f"{'operation':<12} {'backend':<13} {'ours ops/s':>12} {'openssl ops/s':>14} {'ratio':>7}  target")
    for op, target in TARGETS.items():
        for backend, figures in ours.items():
            if op not in figures:
                continue
            v = figures[op]
            r = ref.get(op)
            if backend == "gmssl":
                verdict = "(pure-Python fallback, no target)"
            elif r:
                verdict = f">={target}x " + ("ok" if v / r >= target else "BELOW TARGET")
            if r:
                print(f"{op:<12} {backend:<13} {v:>12,.0f} {r:>14,.0f} {v / r:>6.2f}x  {verdict}")
            else:
                print(f"{op:<12} {backend:<13} {v:>12,.0f} {'n/a':>14}")
    print(f"{'sm4-gcm 1KiB':<12} {'cryptography':<13} {sm4_rate:>12,.0f} {'':>14} {'':>7}  (encrypt, info)")
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
