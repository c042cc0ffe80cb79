"""国密 crypto throughput of every SM2 backend next to `openssl speed` run in the same invocation.

    .venv/bin/python bench/crypto.py

Per backend: SM2 sign/s and verify/s on one thread (per CPU-second, as `openssl speed` counts) and on two
threads on one key (what the gateway's thread pool does): per wall-clock second, and per CPU-second, which
matches the one-thread figure when the threads lose nothing to the GIL or each other), beside
`openssl speed sm2` and `openssl speed ecdsap256` (the same size of curve with OpenSSL's assembly).

Targets: Botan (issue 20) verify >= 2.5x and sign >= 5x `openssl speed sm2`; OpenSSL through ctypes (issue 3)
sign and verify >= 0.7x; SM3 (1 KiB) >= 0.6x. Runs in ~45 s.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without install

from provenance.crypto import (
    SM2PrivateKey,
    available_backends,
    backend_report,
    generate_sm4_key,
    sm3,
    sm4_gcm_encrypt,
)

SECONDS = 3.0
MSG20 = b"x" * 20  # `openssl speed sm2` signs 20-byte inputs
KIB = bytes(range(256)) * 4

# Per backend, the multiple of `openssl speed sm2` each operation must reach on one thread.
SM2_TARGETS = {"botan": {"sign": 5.0, "verify": 2.5}, "openssl": {"sign": 0.7, "verify": 0.7}}
SM3_TARGET = 0.6


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


def rate_threads(fn: Callable[[], object], seconds: float, threads: int = 2) -> tuple[float, float]:
    """``threads`` threads calling fn at once: (calls per wall-clock second, calls per CPU-second).

    On a shared machine the wall rate is what the other processes leave; the CPU-second rate next to the
    one-thread figure shows whether the threads themselves lost anything (to the GIL, or to each other).
    """
    counts = [0] * threads
    go = threading.Event()
    stop = time.perf_counter() + seconds + 0.2

    def work(i: int) -> None:
        fn()  # each thread makes its own per-thread operation objects before the clock starts
        go.wait()
        n = 0
        while time.perf_counter() < stop:
            for _ in range(16):
                fn()
            n += 16
        counts[i] = n

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    time.sleep(0.2)
    start, cpu_start = time.perf_counter(), time.process_time()
    go.set()
    for t in pool:
        t.join()
    n = sum(counts)
    return n / (time.perf_counter() - start), n / (time.process_time() - cpu_start)


def openssl_speed(seconds: int) -> dict[str, float]:
    """sm2 and ecdsap256 sign/s, verify/s and sm3 1 KiB ops/s (per user CPU-second), one `openssl speed`."""
    if shutil.which("openssl") is None:
        return {}
    out = subprocess.run(
        ["openssl", "speed", "-seconds", str(seconds), "-bytes", "1024", "-evp", "sm3", "sm2", "ecdsap256"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    res: dict[str, float] = {}
    m = re.search(r"^sm3\s+([\d.]+)k\s*$", out, re.MULTILINE)
    if m:
        res["sm3 1KiB"] = float(m.group(1)) * 1000 / 1024  # figures are 1000s of bytes per second
    for name, pattern in (("sm2", r"SM2 \(CurveSM2\)"), ("ecdsap256", r"ecdsa \(nistp256\)")):
        m = re.search(pattern + r"\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)", out)
        if m:
            res[f"{name} sign"] = float(m.group(1))
            res[f"{name} verify"] = float(m.group(2))
    return res


def measure_sm2(seconds: float) -> dict[str, dict[str, float]]:
    """backend -> {op, op + " 2t", op + " 2t cpu"} for sign and verify: 1 thread per CPU-second, then
    2 threads per wall-clock second and per CPU-second."""
    ours: dict[str, dict[str, float]] = {}
    for b in available_backends():
        secs = seconds if b != "gmssl" else seconds / 3  # the pure-Python fallback needs no long run
        key = SM2PrivateKey.generate(backend=b)
        pub = key.public_key()
        sig = key.sign(MSG20)
        sign, verify = functools.partial(key.sign, MSG20), functools.partial(pub.verify, MSG20, sig)
        ours[b] = {}
        for op, fn in (("sign", sign), ("verify", verify)):
            ours[b][op] = rate(fn, secs)
            ours[b][op + " 2t"], ours[b][op + " 2t cpu"] = rate_threads(fn, secs)
    return ours


def main() -> int:
    t0 = time.perf_counter()
    load = os.getloadavg()[0]
    print("SM2 backends (* in use):")
    print(backend_report())
    # Half of our runs before `openssl speed`, half after, averaged: on a shared machine the load drifts,
    # and this keeps both figures centred on the same moment.
    first = measure_sm2(SECONDS / 2)
    sm3_first = rate(functools.partial(sm3, KIB), SECONDS / 2)
    ref = openssl_speed(int(SECONDS))
    second = measure_sm2(SECONDS / 2)
    sm3_rate = (sm3_first + rate(functools.partial(sm3, KIB), SECONDS / 2)) / 2
    ours = {b: {op: (v + second[b][op]) / 2 for op, v in ops.items()} for b, ops in first.items()}
    sm4_rate = rate(functools.partial(sm4_gcm_encrypt, generate_sm4_key(), KIB), 1.0)

    print()
    cores = os.cpu_count()
    print(f"load average {load:.1f} -> {os.getloadavg()[0]:.1f} on {cores} cores (wall rates share them)")
    head = f"{'1 thread/s':>11} {'x sm2':>7} {'x p256':>7} {'2 threads/s':>12} {'/CPU-s':>7}"
    print(f"{'sm2':<7} {'backend':<8} {head}  target")
    for op in ("sign", "verify"):
        sm2_ref, p256_ref = ref.get(f"sm2 {op}"), ref.get(f"ecdsap256 {op}")
        for backend, figures in ours.items():
            v = figures[op]
            x_sm2 = f"{v / sm2_ref:>6.2f}x" if sm2_ref else f"{'n/a':>7}"
            x_p256 = f"{v / p256_ref:>6.2f}x" if p256_ref else f"{'n/a':>7}"
            target = SM2_TARGETS.get(backend, {}).get(op)
            if target is None:
                verdict = "(fallback, no target)"
            elif sm2_ref:
                verdict = f">= {target}x sm2 " + ("ok" if v / sm2_ref >= target else "BELOW TARGET")
            else:
                verdict = "(no openssl to compare)"
            row = (
                f"{v:>11,.0f} {x_sm2} {x_p256} {figures[op + ' 2t']:>12,.0f} {figures[op + ' 2t cpu']:>7,.0f}"
            )
            print(f"{op:<7} {backend:<8} {row}  {verdict}")
        for name in ("sm2", "ecdsap256"):
            r = ref.get(f"{name} {op}")
            if r:
                print(f"{op:<7} {'openssl speed ' + name:<24} {r:>11,.0f}   (reference, 1 core)")
    r = ref.get("sm3 1KiB")
    verdict = f">= {SM3_TARGET}x " + ("ok" if r and sm3_rate / r >= SM3_TARGET else "BELOW TARGET")
    print()
    print(f"sm3 1KiB     {sm3_rate:>11,.0f}/s  openssl speed {r or 0:>11,.0f}/s  {verdict}")
    print(f"sm4-gcm 1KiB {sm4_rate:>11,.0f}/s  (encrypt, info)")
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
