"""The main job: what coinguard is for, in one run, on a fresh machine with no key.

    pip install -e . && python examples/quickstart.py

It starts the embedded sandbox (a keyed crypto-data API on 127.0.0.1), then reads prices with
the read key, shows the quota, has a read-only client refuse an order before sending anything,
verifies that the read key cannot trade, places one order through a dropped connection without
duplicating it, and shows that the logs hold only key fingerprints. With TOKENMETRICS_API_KEY
set, it first reads prices from the real Token Metrics API (one line if that fails, then the
rest as usual). The same run is `coinguard demo`; its code is in src/coinguard/_demo.py.
"""

import sys

from coinguard._demo import run_demo

if __name__ == "__main__":
    sys.exit(run_demo(sys.stdout))
