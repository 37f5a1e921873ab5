"""End to end: a client under load keeps working while its key rotates in AWS and upstream."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import coinguard
from coinguard.sandbox import Sandbox


def test_client_under_load_survives_aws_rotation(sm: Any, secret_name: str) -> None:
    """AWSPENDING -> AWSCURRENT while 4 threads call the sandbox: no failed call, new key used."""
    with Sandbox() as sb:
        old = sb.keys.read
        sm.create_secret(Name=secret_name, SecretString=f'{{"read_key": "{old}"}}')
        ref = coinguard.secret(f"aws-sm://{secret_name}#read_key", ttl=0.2)
        client = coinguard.Client(provider="sandbox", base_url=sb.base_url, read_key=ref)
        errors: list[BaseException] = []
        calls = [0] * 4
        stop = threading.Event()

        def worker(i: int) -> None:
            while not stop.is_set():
                try:
                    client.get("/price", params={"symbol": "BTC"})
                except BaseException as exc:  # any failed call fails the test
                    errors.append(exc)
                    return
                calls[i] += 1

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        while sum(calls) < 40 and not errors:
            threading.Event().wait(0.01)
        # The rotation Lambda's steps: a new provider key, stored as AWSPENDING, then promoted.
        new = sb.rotate(old, overlap=30.0)
        token = str(uuid.uuid4())
        sm.put_secret_value(
            SecretId=secret_name,
            ClientRequestToken=token,
            SecretString=f'{{"read_key": "{new}"}}',
            VersionStages=["AWSPENDING"],
        )
        current = sm.describe_secret(SecretId=secret_name)["VersionIdsToStages"]
        old_version = next(v for v, stages in current.items() if "AWSCURRENT" in stages)
        sm.update_secret_version_stage(
            SecretId=secret_name,
            VersionStage="AWSCURRENT",
            MoveToVersionId=token,
            RemoveFromVersionId=old_version,
        )
        before = sum(calls)
        while sum(calls) < before + 80 and not errors:
            threading.Event().wait(0.01)
        stop.set()
        for t in threads:
            t.join()
        client.close()
        assert errors == []
        new_fp = coinguard.fingerprint(new)
        assert sb.ledger.count(fingerprint=new_fp, status=200) > 0
        assert sb.ledger.count(status=401) == 0  # the overlap covered the switch


def test_async_client_refreshes_a_secret_reference_off_the_loop(sm: Any, secret_name: str) -> None:
    """AsyncClient: a secret reference past its TTL is fetched again, in a worker thread."""
    import anyio

    with Sandbox() as sb:
        sm.create_secret(Name=secret_name, SecretString=sb.keys.read)
        clock = [0.0]
        ref = coinguard.secret(f"aws-sm://{secret_name}", ttl=60, clock=lambda: clock[0])

        async def main() -> None:
            async with coinguard.AsyncClient(
                provider="sandbox", base_url=sb.base_url, read_key=ref
            ) as client:
                await client.get("/price", params={"symbol": "BTC"})
                new = sb.rotate(sb.keys.read, overlap=0.0)
                sm.put_secret_value(SecretId=secret_name, SecretString=new)
                clock[0] = 61.0  # the TTL has passed: the next call fetches the new key
                await client.get("/price", params={"symbol": "BTC"})

        anyio.run(main)
        assert sb.ledger.count(status=401) == 0
        assert ref.generation == 2
