"""An MCP client (the official SDK's) talking to ``coinguard mcp`` over stdio.

    python examples/agents/mcp_client.py

An MCP client starts the server as a child process that inherits only a few variables
(HOME, PATH, ...): the key goes in ``env=``, here as the sandbox's key. In a client's config
file prefer a secret reference (``COINGUARD_READ_KEY_REF``) so no key sits in the file; see
``mcp_config.json`` beside this script.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

from mcp import Client, StdioServerParameters

from coinguard.sandbox import Sandbox


async def main() -> None:
    command = shutil.which("coinguard", path=str(Path(sys.executable).parent)) or "coinguard"
    with Sandbox() as sb:
        server = StdioServerParameters(
            command=command,
            args=[
                "mcp",
                "--provider",
                "sandbox",
                "--base-url",
                sb.base_url,
                "--budget-calls",
                "50",
            ],
            env={"COINGUARD_READ_KEY": sb.keys.read},
        )
        async with Client(server) as mcp:
            listed = (await mcp.list_tools()).tools
            print("tools:", ", ".join(t.name for t in listed))
            answer = await mcp.call_tool("prices", {"symbols": ["BTC"]})
            print("BTC:", answer.structured_content["rows"][0]["price"] > 0)


if __name__ == "__main__":
    asyncio.run(main())
