"""The devnet's witnesses: one ``python -m witness serve`` process per witness the manifest names.

Each is run as its organisation would run it: its own SM2 key (registered in OrgRegistry by ``deploy``), its
own state file under ``<dir>/witness/``, the log key pinned by the devnet's trust file. The gateway is told
their URLs and verifier keys (``PROV_GW_WITNESSES``) and the quorum it publishes at.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from devnet.engines import free_port
from devnet.solc import REPO_ROOT
from provenance.crypto import SM2PublicKey
from provenance.log.cosignature import WitnessKey
from provenance.manifest import Manifest

PREFIX = "witness-"  # pid files and logs: witness-<org>


@dataclass
class WitnessProcess:
    """One running witness: its organisation, key name, URL and process."""

    org: str
    name: str
    vkey: str
    url: str
    process: subprocess.Popen[bytes]

    @property
    def label(self) -> str:
        return PREFIX + self.org


def spawn(
    manifest: Manifest, *, root: Path, host: str, base_port: int | None, log_path: Callable[[str], Path]
) -> list[WitnessProcess]:
    """Start every witness of the manifest (not waiting for them): ports from ``base_port`` on, else free."""
    out = []
    for i, w in enumerate(manifest.witnesses):
        port = base_port + i if base_port is not None else free_port(host)
        env = {
            **os.environ,
            "PROV_WITNESS_NAME": w["name"],
            "PROV_WITNESS_ORG": w["org"],
            "PROV_WITNESS_KEY_FILE": str(manifest.resolve(w["key_file"])),
            "PROV_WITNESS_TRUST_FILE": str(root / "trust.json"),
            "PROV_WITNESS_STATE_FILE": str(root / "witness" / f"{w['org']}.db"),
            "PROV_WITNESS_HOST": host,
            "PROV_WITNESS_PORT": str(port),
        }
        log = log_path(PREFIX + w["org"]).open("ab")
        cmd = [sys.executable, "-m", "witness", "serve"]
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)  # noqa: S603
        log.close()
        key = WitnessKey(name=w["name"], public_key=SM2PublicKey.from_pem(w["public_key"]), org=w["org"])
        url = f"http://{host}:{port}"
        out.append(WitnessProcess(org=w["org"], name=w["name"], vkey=key.vkey(), url=url, process=proc))
    return out


def wait_ready(witnesses: list[WitnessProcess], timeout: float) -> str | None:
    """None once every witness answers /healthz; else what went wrong (one exited, or the time ran out)."""
    deadline = time.monotonic() + timeout
    pending = list(witnesses)
    while pending and time.monotonic() < deadline:
        for w in list(pending):
            if w.process.poll() is not None:
                return f"the witness of {w.org} exited with {w.process.returncode}"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{w.url}/healthz", timeout=1.0).status_code == 200:
                    pending.remove(w)
        time.sleep(0.1)
    return None if not pending else f"witnesses {', '.join(w.org for w in pending)} did not answer in time"


def gateway_env(witnesses: list[WitnessProcess], quorum: int) -> dict[str, str]:
    """The gateway's settings for these witnesses."""
    if not witnesses:
        return {}
    doc = [{"url": w.url, "vkey": w.vkey, "org": w.org} for w in witnesses]
    return {"PROV_GW_WITNESSES": json.dumps(doc), "PROV_GW_WITNESS_QUORUM": str(quorum)}
