"""The devnet's processes: one supervisor owns the node (or anvil), the witnesses and the gateway.

``up`` in the foreground is that supervisor; ``up --detach`` starts it in a session of its own and returns
once it is ready. ``down`` and ``status`` find it through pid files under ``<dir>/run``. What the processes
serve (keys, contracts, manifest, tokens) is the network's (``devnet/network.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from devnet import demo, witnesses
from devnet.anvil import start_anvil
from devnet.config import DevnetSettings
from devnet.embedded import start_embedded
from devnet.engines import EngineHandle, stop_process
from devnet.layout import HOST, DevnetError, Layout
from devnet.network import Network, NetworkInfo, describe, engine_accounts, gateway_wanted, rpc
from devnet.processes import (
    Stopped,
    clear_stale,
    port_free,
    running,
    signals_stop,
    tail,
    terminate,
    write_pid,
)
from devnet.solc import REPO_ROOT
from provenance.errors import ProvenanceError
from provenance.files import write_public
from provenance.manifest import Manifest


@dataclass(frozen=True, kw_only=True)
class ServiceStatus:
    """One process of the devnet as ``status`` sees it."""

    name: str
    pid: int | None
    running: bool
    url: str | None = None
    healthy: bool | None = None
    detail: str = ""


class Devnet:
    """The processes of one devnet, owned by the calling (supervisor) process."""

    def __init__(self, *, settings: DevnetSettings, on_step: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.network = Network(settings=settings, on_step=on_step)
        self.on_step = self.network.on_step
        self.layout = self.network.layout
        self.engine: EngineHandle | None = None
        self.gateway: subprocess.Popen[bytes] | None = None
        self.witnesses: list[witnesses.WitnessProcess] = []

    @property
    def gateway_url(self) -> str:
        return f"http://{HOST}:{self.settings.gateway_port}"

    def _start_engine(self) -> EngineHandle:
        s, lay = self.settings, self.layout
        if not port_free(s.rpc_port):
            raise DevnetError(f"port {s.rpc_port} is in use (another node? try `provenance devnet status`)")
        if s.engine == "anvil":
            try:
                return start_anvil(port=s.rpc_port, block_time=s.block_time)
            except (OSError, RuntimeError) as exc:
                raise DevnetError(f"anvil did not start: {exc}") from exc
        try:
            # A first start writes the genesis: the deployer may create contracts, the committee may
            # transact, and the organisations' accounts are permitted through OrgRegistry once registered.
            return start_embedded(
                data_dir=lay.node_dir,
                port=s.rpc_port,
                accounts=engine_accounts(lay),
                block_time=s.block_time,
                dev_rpc=False,
                registry_permits=True,
                bounded_clock=True,
            )
        except ProvenanceError as exc:
            hint = " (a chain from an older node version? `provenance devnet reset --yes`)"
            raise DevnetError(exc.message + (hint if lay.manifest.exists() else "")) from exc

    def _gateway_env(self) -> dict[str, str]:
        manifest = self.network.manifest
        quorum = manifest.witness_quorum if manifest else 0
        return self.network.gateway_env(witnesses.gateway_env(self.witnesses, quorum))

    def _spawn_gateway(self) -> None:
        s, lay = self.settings, self.layout
        if not port_free(s.gateway_port):
            raise DevnetError(
                f"port {s.gateway_port} is in use (another gateway? `provenance devnet status`)"
            )
        cmd = [sys.executable, "-m", "gateway", "serve", "--host", HOST, "--port", str(s.gateway_port)]
        log = lay.log("gateway").open("ab")
        env = self._gateway_env()
        self.gateway = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)  # noqa: S603
        log.close()
        write_pid(lay, "gateway", self.gateway.pid)

    def _wait_gateway(self) -> None:
        s, lay, proc = self.settings, self.layout, self.gateway
        assert proc is not None
        deadline = time.monotonic() + s.start_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DevnetError(f"gateway exited with {proc.returncode}: {tail(lay.log('gateway'))}")
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{self.gateway_url}/healthz", timeout=1.0)
                return  # any HTTP answer: it serves; `status` reports whether it is healthy
            time.sleep(0.1)
        raise DevnetError(f"gateway did not answer on {self.gateway_url} within {s.start_timeout:.0f} s")

    def start(self) -> None:
        """Start the engine, deploy or resume, mint tokens, start the gateway; write pid files."""
        self.network.check_state()
        self.on_step(f"starting the {self.settings.engine} node on port {self.settings.rpc_port}")
        self.engine = self._start_engine()
        if self.engine.process is not None:
            write_pid(self.layout, "node", self.engine.process.pid)
        manifest = self.network.ensure_deployed(self.engine)
        if gateway_wanted(self.settings):
            self._start_witnesses(manifest)
            self.on_step(f"starting the gateway on port {self.settings.gateway_port}")
            self.network.mint_tokens(env=self._gateway_env(), meanwhile=self._spawn_gateway)
            self._wait_gateway()
            if self.network.created and self.settings.demo_data:
                self._seed_demo()
        endpoints = {
            "engine": self.engine.name,
            "rpc_url": self.engine.rpc_url,
            "gateway_url": self.gateway_url if self.gateway is not None else None,
            "witnesses": [{"org": w.org, "name": w.name, "url": w.url} for w in self.witnesses],
            "created": self.network.created,
            "notes": self.network.notes,
            "ready": True,
        }
        write_public(self.layout.endpoints, (json.dumps(endpoints, indent=2) + "\n").encode())

    def _seed_demo(self) -> None:
        """The demo records of a new network; a failure leaves a note (the network itself is up)."""
        try:
            demo.seed(self.layout.root, self.gateway_url, self.on_step)
        except (ProvenanceError, httpx.HTTPError) as exc:
            note = f"the demo records were not all recorded: {exc}"
            self.network.notes.append(note)
            self.on_step(note)

    def _start_witnesses(self, manifest: Manifest) -> None:
        """Start the manifest's witnesses and wait until each answers (before the gateway submits to them)."""
        if not manifest.witnesses:
            return
        self.on_step(f"starting {len(manifest.witnesses)} witnesses ({manifest.witness_quorum} must cosign)")
        lay = self.layout
        self.witnesses = witnesses.spawn(
            manifest, root=lay.root, host=HOST, base_port=self.settings.witness_port, log_path=lay.log
        )
        for w in self.witnesses:
            write_pid(lay, w.label, w.process.pid)
        problem = witnesses.wait_ready(self.witnesses, self.settings.start_timeout)
        if problem is not None:
            raise DevnetError(f"{problem}; see {lay.log(witnesses.PREFIX + '*')}")

    def dead_child(self) -> str | None:
        """The name of a process that exited on its own, if any."""
        if (
            self.engine is not None
            and self.engine.process is not None
            and self.engine.process.poll() is not None
        ):
            return "node"
        if self.gateway is not None and self.gateway.poll() is not None:
            return "gateway"
        # A witness that exits is not fatal: it delays quorum, never the acceptance of records (`status`
        # shows it stopped; its log says why).
        return None

    def stop(self) -> None:
        """Stop the gateway, then the engine (so the gateway's last writes reach the chain), then clean up."""
        if self.gateway is not None:
            stop_process(self.gateway, self.settings.stop_timeout)
            self.layout.pid_file("gateway").unlink(missing_ok=True)
        for w in self.witnesses:
            stop_process(w.process, self.settings.stop_timeout)
            self.layout.pid_file(w.label).unlink(missing_ok=True)
        if self.engine is not None:
            self.engine.stop()
            self.layout.pid_file("node").unlink(missing_ok=True)
        self.layout.endpoints.unlink(missing_ok=True)


def running_pid(layout: Layout) -> int | None:
    """The pid of the devnet supervisor running over ``layout``, if any."""
    return running(layout, "devnet")


def serve(
    settings: DevnetSettings,
    *,
    on_ready: Callable[[NetworkInfo], None],
    on_step: Callable[[str], None] | None = None,
) -> int:
    """Run the devnet in this process until SIGINT/SIGTERM (exit code 0) or a child dies (1)."""
    layout = Layout(settings.dir.resolve())
    layout.check_usable()
    other = running_pid(layout)
    if other is not None and other != os.getpid():
        raise DevnetError(f"a devnet already runs over {layout.root} (pid {other}); `provenance devnet down`")
    clear_stale(layout, settings.stop_timeout)
    layout.root.mkdir(parents=True, exist_ok=True, mode=0o700)  # keys and tokens inside
    write_pid(layout, "devnet", os.getpid())
    net = Devnet(settings=settings, on_step=on_step)
    try:
        with signals_stop():
            try:
                net.start()
                on_ready(describe(layout))
                while (dead := net.dead_child()) is None:
                    time.sleep(0.2)
                log = layout.node_dir / "node.log" if dead == "node" else layout.log(dead)
                raise DevnetError(f"the {dead} exited unexpectedly; see {log}: {tail(log, 500)}")
            except Stopped:
                return 0
            finally:
                net.stop()
    finally:
        layout.pid_file("devnet").unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # left only if something else was put there
            layout.run_dir.rmdir()


def _settings_env(settings: DevnetSettings) -> dict[str, str]:
    env = dict(os.environ)
    values = settings.model_dump()
    values["dir"] = settings.dir.resolve()  # the supervisor runs from the repository root
    for key, value in values.items():
        name = f"PROV_DEVNET_{key.upper()}"
        if value is None:
            env.pop(name, None)
        else:
            env[name] = str(value)
    return env


def up_detached(settings: DevnetSettings) -> NetworkInfo:
    """Start the supervisor in a session of its own (it outlives this process); return once it is ready."""
    layout = Layout(settings.dir.resolve())
    layout.check_usable()
    other = running_pid(layout)
    if other is not None:
        raise DevnetError(f"a devnet already runs over {layout.root} (pid {other}); `provenance devnet down`")
    clear_stale(layout, settings.stop_timeout)
    layout.root.mkdir(parents=True, exist_ok=True, mode=0o700)  # keys and tokens inside
    log_path = layout.log("devnet")
    log = log_path.open("ab")
    proc = subprocess.Popen(  # our own module, fixed argv
        [sys.executable, "-m", "devnet", "up", "--foreground", "--quiet"],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_settings_env(settings),
        cwd=REPO_ROOT,
        start_new_session=True,  # Ctrl-C or a closed terminal must not reach it
    )
    log.close()
    deadline = time.monotonic() + settings.start_timeout + 30  # a first run deploys every contract
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DevnetError(f"the devnet exited with {proc.returncode}: {tail(log_path, 1500)}")
            if layout.endpoints.exists() and running_pid(layout) == proc.pid:
                return describe(layout)
            time.sleep(0.2)
    except KeyboardInterrupt:
        # Ctrl-C does not reach the supervisor (its own session): stop it rather than leave it half up.
        terminate(proc.pid, 2 * settings.stop_timeout + 5)
        raise DevnetError("interrupted: the devnet was stopped") from None
    terminate(proc.pid, settings.stop_timeout)
    raise DevnetError(f"the devnet was not ready within {settings.start_timeout + 30:.0f} s; see {log_path}")


def down(settings: DevnetSettings) -> list[str]:
    """Stop a running devnet (its supervisor stops its children); return what was stopped."""
    layout = Layout(settings.dir.resolve())
    stopped: list[str] = []
    pid = running_pid(layout)
    if pid is not None:
        # The supervisor stops the gateway and the node within stop_timeout each before it exits.
        terminate(pid, 2 * settings.stop_timeout + 5)
        stopped.append("devnet")
    for name in layout.children():  # orphans of a supervisor that was killed outright
        child = running(layout, name)
        if child is not None:
            terminate(child, settings.stop_timeout)
            stopped.append(name)
    if layout.run_dir.exists():
        shutil.rmtree(layout.run_dir)
    return stopped


def _manifest_rpc(layout: Layout) -> str | None:
    try:
        return Manifest.load(layout.manifest).rpc_url
    except ProvenanceError:  # no manifest, or not one
        return None


def status(settings: DevnetSettings) -> list[ServiceStatus]:
    """The supervisor, node, gateway and witnesses: running or not, and whether their endpoints answer."""
    layout = Layout(settings.dir.resolve())
    try:
        endpoints: dict[str, Any] = json.loads(layout.endpoints.read_text("utf-8"))
    except (OSError, ValueError):
        endpoints = {}
    pid = running_pid(layout)
    result = [ServiceStatus(name="devnet", pid=pid, running=pid is not None, detail=str(layout.root))]

    rpc_url = endpoints.get("rpc_url") or _manifest_rpc(layout) or f"http://{HOST}:{settings.rpc_port}"
    healthy, detail = False, "no answer"
    try:
        w3 = rpc(str(rpc_url), timeout=2)
        healthy, detail = True, f"chain {w3.eth.chain_id}, height {w3.eth.block_number}"
    except Exception:  # noqa: S110 - any failure means "not answering"
        pass
    result.append(_service(layout, "node", str(rpc_url), healthy, detail))

    gw_url = endpoints.get("gateway_url") or f"http://{HOST}:{settings.gateway_port}"
    try:
        response = httpx.get(f"{gw_url}/healthz", timeout=2.0)
        gw_healthy, gw_detail = response.status_code == 200, f"/healthz {response.status_code}"
    except httpx.HTTPError:
        gw_healthy, gw_detail = False, "no answer"
    result.append(_service(layout, "gateway", str(gw_url), gw_healthy, gw_detail))
    for w in endpoints.get("witnesses", []):
        try:
            held = httpx.get(f"{w['url']}/healthz", timeout=2.0).json()["logs"]
            healthy, detail = True, ", ".join(f"cosigned {lg['origin']} size {lg['size']}" for lg in held)
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            healthy, detail = False, "no answer"
        result.append(_service(layout, witnesses.PREFIX + str(w["org"]), str(w["url"]), healthy, detail))
    return result


def _service(layout: Layout, name: str, url: str, healthy: bool, detail: str) -> ServiceStatus:
    """A child process's status: its pid file's process if that still runs, its endpoint's health."""
    pid = running(layout, name)
    return ServiceStatus(name=name, pid=pid, running=pid is not None, url=url, healthy=healthy, detail=detail)


def reset(settings: DevnetSettings) -> bool:
    """Stop the devnet and delete its folder; False if there was nothing to delete."""
    layout = Layout(settings.dir.resolve())
    if not layout.root.exists():
        return False
    if not layout.looks_like_devnet():
        raise DevnetError(f"{layout.root} does not look like a devnet folder; not deleting it")
    down(settings)
    shutil.rmtree(layout.root)
    return True
