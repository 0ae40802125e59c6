"""Entry point of every process the lab runs inside a namespace: ``python -m analyzer.lab.agent ROLE``.

Roles: ``proxy`` (the sidecar), ``app`` (the pod's application), ``driver`` (a bounded traffic loop).
Daemons (proxy, app) exit on SIGTERM or after ``--lifetime`` seconds, whichever comes first, and touch
``<state>/ready/<pod>.<role>`` once listening. Standard library + ``analyzer.lab`` only (argparse, not
click), so it starts fast and would run on the bare python3 of a debug container.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path

from analyzer.lab import connlog
from analyzer.lab.topology import NODE, Lab

DEFAULT_LIFETIME_S = 3600.0  # a forgotten lab stops by itself after an hour


def _ready(state: Path, pod: str, role: str) -> None:
    (state / "ready").mkdir(exist_ok=True)
    (state / "ready" / f"{pod}.{role}").touch()


async def _until_stopped(lifetime_s: float) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), lifetime_s)
    except TimeoutError:
        logging.info("lifetime of %.0f s reached; exiting", lifetime_s)


async def run_proxy(lab: Lab, args) -> None:
    from analyzer.lab.pki import leaf_files
    from analyzer.lab.proxy import Proxy

    pod = lab.pod(args.pod)
    connlog.start(args.state, pod.key, "proxy", pod.ip)
    certs = args.state / "certs"
    proxy = Proxy(lab, pod, leaf_files(certs, pod.key), certs / "trust-anchor.crt")
    task = asyncio.create_task(proxy.run(args.lifetime, lambda: _ready(args.state, pod.key, "proxy")))
    await _until_stopped(args.lifetime)
    task.cancel()


async def run_app(lab: Lab, args) -> None:
    from analyzer.lab.apps import App

    connlog.start(args.state, args.pod, "app", lab.pod(args.pod).ip)
    app = App(lab, lab.pod(args.pod))
    await app.start()
    _ready(args.state, args.pod, "app")
    await _until_stopped(args.lifetime)
    app.close()


async def run_driver(lab: Lab, args) -> None:
    from analyzer.lab.traffic import Driver

    driver = Driver(lab, args.pod, args.scenario, args.seconds, args.max_rounds)
    summary = await asyncio.wait_for(driver.run(args.go), args.seconds + 90)
    print(json.dumps(summary), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analyzer.lab.agent")
    parser.add_argument("role", choices=("proxy", "app", "driver"))
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--pod", required=True)
    parser.add_argument("--lifetime", type=float, default=DEFAULT_LIFETIME_S)
    parser.add_argument("--scenario", default="steady")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--max-rounds", type=int, default=1000)
    parser.add_argument("--go", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s {args.role}[{args.pod}] %(levelname)s %(message)s")
    lab = Lab.load(args.state / "lab.json")
    if args.pod != NODE:
        lab.pod(args.pod)  # validate early: KeyError names the bad pod
    runner = {"proxy": run_proxy, "app": run_app, "driver": run_driver}[args.role]
    asyncio.run(runner(lab, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
