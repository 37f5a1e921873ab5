"""Shared by the stack sketches: build an ``App`` and serve it from the command line."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any

from coinguard.sandbox import SandboxConfig, parse_limit
from coinguard.sandbox._app import App


def serve_main(start: Callable[[Sequence[App]], Any]) -> None:
    """Serve one App on a free port, print ``{"base_url", "keys"}`` and wait for SIGTERM."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", default="1000000000/s")
    args = parser.parse_args()
    app = App(SandboxConfig(windows=(parse_limit(args.limit),)))
    shell = start([app])
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    keys = {"read": app.keys.read, "trade": app.keys.trade}
    print(
        json.dumps({"base_url": f"http://127.0.0.1:{shell.ports[0]}/v2", "keys": keys}), flush=True
    )
    done.wait()
    shell.stop()
