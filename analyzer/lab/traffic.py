"""Traffic drivers: bounded client loops run inside one pod's (or the node's) namespace.

A driver prepares (in the ``midconn`` scenario it opens its long-lived connections and uses them once),
prints ``READY``, waits for the *go file* the capture command creates once tshark is capturing, then loops
until ``seconds`` have passed or ``max_rounds`` rounds were made - whichever comes first - and exits by
itself, printing a JSON summary line. Nothing here loops without both bounds.

steady scenario (fresh connection per call, so every call shows its handshake):
  vote-bot          -> web:8080 GET /api/vote (web then calls emoji, voting:8080, voting:4567), DNS
  legacy            -> voting:8080 gRPC over h2c in plaintext (unmeshed), DNS
  prometheus        -> every meshed proxy :4191/metrics (meshed: mTLS via its proxy)
  prometheus-server -> every meshed proxy :4191/metrics (unmeshed: plaintext)
  node (kubelet)    -> app /ready and proxy :4191 /ready, /live, from the node IP
midconn scenario (connections opened before the capture starts, used during it, closed at the end):
  web -> voting:8080 and voting:4567 gRPC channels; legacy -> voting:8080; both Prometheus -> voting:4191
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from analyzer.lab import apps, h2c, http1
from analyzer.lab.topology import NODE, PROXY_ADMIN_PORT, Lab

log = logging.getLogger(__name__)

GO_TIMEOUT_S = 60.0  # a driver never waits longer than this for the capture to start
INTERVAL_S = {"vote-bot": 1.0, "legacy": 2.0, "prometheus": 3.0, "prometheus-server": 3.0, NODE: 2.5,
              "web": 0.7}
PROBE_UA = {"User-Agent": "kube-probe/1.31"}
SCRAPE_HEADERS = {"User-Agent": "Prometheus/2.53.0", "Accept": "text/plain;version=0.0.4"}


class Driver:
    def __init__(self, lab: Lab, key: str, scenario: str, seconds: float, max_rounds: int):
        self.lab, self.key, self.scenario = lab, key, scenario
        self.seconds, self.max_rounds = seconds, max_rounds
        self.ok = 0
        self.failed = 0
        self.channels: list = []  # midconn: (kind, target label, objects...)

    async def _count(self, coro) -> None:
        try:
            await coro
            self.ok += 1
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
            self.failed += 1
            log.warning("%s: call failed: %r", self.key, exc)

    # -- steady ----------------------------------------------------------------------------------------
    async def steady_round(self, index: int) -> None:
        lab = self.lab
        if self.scenario == "services":  # through the Service's ClusterIP: the node DNATs it to the pod
            for edge in lab.edges_from(self.key, self.scenario):
                spec, cluster_ip = lab.service_for(edge)
                host = f"{spec.name}.{lab.pod(edge.dst).namespace}.svc.cluster.local:{spec.port}"
                await self._count(apps.http_get(cluster_ip, spec.port, "/api/list", host))
        elif self.key == "vote-bot":
            web_ip = await apps.lookup(lab, "web")
            choice = apps.EMOJI[index % len(apps.EMOJI)]
            await self._count(apps.http_get(web_ip, 8080, f"/api/vote?choice={choice}",
                                            f"{lab.service_name('web')}:8080", {"User-Agent": "vote-bot/1.0"}))
        elif self.key == "legacy":
            voting_ip = await apps.lookup(lab, "voting")
            await self._count(apps.grpc_call(voting_ip, 8080, f"{lab.service_name('voting')}:8080",
                                             apps.RESULTS_PATH, b""))
        elif self.key in ("prometheus", "prometheus-server"):
            for edge in lab.edges_from(self.key, self.scenario):
                target = lab.pod(edge.dst)
                await self._count(apps.http_get(target.ip, edge.port, "/metrics", f"{target.ip}:{edge.port}",
                                                SCRAPE_HEADERS))
        elif self.key == NODE:
            for edge in lab.edges_from(NODE, self.scenario):
                target = lab.pod(edge.dst)
                paths = ("/live", "/ready") if edge.port == PROXY_ADMIN_PORT else ("/ready",)
                for path in paths:
                    await self._count(apps.http_get(target.ip, edge.port, path, f"{target.ip}:{edge.port}",
                                                    PROBE_UA))

    # -- midconn ---------------------------------------------------------------------------------------
    async def open_channels(self) -> None:
        """Open and use once every long-lived connection this pod holds in the midconn scenario."""
        for edge in self.lab.edges_from(self.key, self.scenario):
            target = self.lab.pod(edge.dst)
            reader, writer = await apps.open_tcp(target.ip, edge.port)
            if edge.kind == "scrape":
                self.channels.append(("http", edge.port, target, reader, writer))
            else:
                client = h2c.Client(reader, writer, f"{self.lab.service_name(edge.dst)}:{edge.port}")
                self.channels.append(("grpc", edge.port, target, client, writer))
        await self.midconn_round(0)

    async def midconn_round(self, index: int) -> None:
        for kind, port, target, first, writer in self.channels:
            if kind == "http":
                await self._count(http1.request(first, writer, "GET", "/metrics", f"{target.ip}:{port}",
                                                SCRAPE_HEADERS))
            else:
                path = apps.VOTE_PATH if port == 8080 and self.key == "web" else apps.RESULTS_PATH
                await self._count(first.call(path, h2c.proto_string(1, apps.EMOJI[index % len(apps.EMOJI)])))

    async def close_channels(self) -> None:
        for kind, _port, _target, first, writer in self.channels:
            if kind == "grpc":
                await first.close()
            else:
                writer.close()

    # -- main loop -------------------------------------------------------------------------------------
    async def run(self, go_file: Path | None) -> dict:
        if self.scenario == "midconn":
            await self.open_channels()
        print("READY", flush=True)
        if go_file is not None:
            waited = time.monotonic() + GO_TIMEOUT_S
            while not go_file.exists():
                if time.monotonic() > waited:
                    raise TimeoutError(f"no go file {go_file} after {GO_TIMEOUT_S:.0f} s")
                await asyncio.sleep(0.02)
        interval = INTERVAL_S.get(self.key, 1.0) if self.scenario == "steady" else 1.0
        deadline = time.monotonic() + self.seconds
        rounds = 0
        while rounds < self.max_rounds and time.monotonic() < deadline:
            started = time.monotonic()
            if self.scenario == "midconn":
                await self.midconn_round(rounds + 1)
            else:
                await self.steady_round(rounds)
            rounds += 1
            await asyncio.sleep(max(0.0, min(interval - (time.monotonic() - started), deadline - time.monotonic())))
        if self.scenario == "midconn":
            await self.close_channels()
        return {"pod": self.key, "scenario": self.scenario, "rounds": rounds, "ok": self.ok, "failed": self.failed}


def drivers_for(lab: Lab, scenario: str) -> list[str]:
    """Pod keys (and NODE) that initiate traffic on their own in `scenario` (web's steady calls are
    made by its app in response to vote-bot, so web drives only in midconn)."""
    keys = []
    for edge in lab.edges:
        if scenario not in edge.scenarios or edge.proto != "tcp" or edge.src in keys:
            continue
        if scenario == "steady" and edge.src == "web":
            continue
        keys.append(edge.src)
    return keys
