"""aws-sm:// against moto's threaded HTTP server on loopback, including a live rotation."""

from __future__ import annotations

import json
import sys
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from coinguard._exceptions import ConfigurationError
from coinguard._secrets import SecretBackendError, SecretRef, secret
from coinguard._secrets._aws import AwsBackend
from coinguard._secrets._base import parse_ref


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_whole_secret_string(sm: Any, secret_name: str, no_leak: Callable[..., None]) -> None:
    """Without #field the whole SecretString is the key, read through AWS_ENDPOINT_URL."""
    sm.create_secret(Name=secret_name, SecretString="CANARY-aws-plain\n")
    ref = secret(f"aws-sm://{secret_name}")
    assert ref.load().reveal() == "CANARY-aws-plain"
    no_leak("CANARY-aws-plain", ref, ref.load())


def test_json_field_and_options(sm: Any, secret_name: str, aws_env: str) -> None:
    """#field picks a JSON key; ?region= and ?endpoint_url= are honoured."""
    doc = {"read_key": "CANARY-aws-read", "trade_key": "CANARY-aws-trade"}
    sm.create_secret(Name=secret_name, SecretString=json.dumps(doc))
    ref = secret(f"aws-sm://{secret_name}#trade_key?region=us-east-1&endpoint_url={aws_env}")
    assert ref.load().reveal() == "CANARY-aws-trade"


def test_missing_field_does_not_leak_other_fields(
    sm: Any, secret_name: str, no_leak: Callable[..., None]
) -> None:
    """A #field absent from the JSON is not_found; the other fields never show up."""
    sm.create_secret(Name=secret_name, SecretString=json.dumps({"read_key": "CANARY-aws-other"}))
    with pytest.raises(SecretBackendError, match="no field 'trade_key'") as info:
        secret(f"aws-sm://{secret_name}#trade_key").load()
    assert info.value.reason == "not_found"
    no_leak("CANARY-aws-other", info.value)


def test_field_on_non_json_is_invalid_without_leaking(
    sm: Any, secret_name: str, no_leak: Callable[..., None]
) -> None:
    """#field on a plain-string secret is invalid, and the decode error (which holds it) is cut."""
    sm.create_secret(Name=secret_name, SecretString="CANARY-aws-notjson")
    with pytest.raises(SecretBackendError) as info:
        secret(f"aws-sm://{secret_name}#read_key").load()
    assert info.value.reason == "invalid"
    assert info.value.__cause__ is None
    no_leak("CANARY-aws-notjson", info.value)


def test_not_found(aws_env: str) -> None:
    """ResourceNotFoundException becomes not_found naming the reference and the AWS code."""
    with pytest.raises(SecretBackendError) as info:
        secret("aws-sm://coinguard/absent").load()
    assert info.value.reason == "not_found"
    assert "aws-sm://coinguard/absent" in str(info.value)
    assert "ResourceNotFoundException" in str(info.value)


def test_unreachable_endpoint(aws_env: str) -> None:
    """A closed port is 'backend unreachable', not a raw botocore error."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ref = secret(f"aws-sm://x?endpoint_url=http://127.0.0.1:{port}")
    with pytest.raises(SecretBackendError) as info:
        ref.load()
    assert info.value.reason == "unreachable"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("AccessDeniedException", "access_denied"),
        ("DecryptionFailure", "access_denied"),
        ("ResourceNotFoundException", "not_found"),
        ("InternalServiceError", "unreachable"),
    ],
)
def test_client_error_codes(aws_env: str, code: str, reason: str) -> None:
    """botocore ClientError codes map to failure kinds (botocore's Stubber plays the service)."""
    import boto3
    from botocore.stub import Stubber

    client = boto3.session.Session().client("secretsmanager")
    stubber = Stubber(client)
    stubber.add_client_error("get_secret_value", service_error_code=code)
    stubber.activate()
    backend = AwsBackend(parse_ref("aws-sm://tm"), client_factory=lambda: client)
    with pytest.raises(SecretBackendError) as info:
        SecretRef(backend).load()
    assert info.value.reason == reason
    assert code in str(info.value)


def test_binary_secret_is_invalid(sm: Any, secret_name: str) -> None:
    """A SecretBinary secret is reported as invalid (keys are text)."""
    sm.create_secret(Name=secret_name, SecretBinary=b"\x00\x01")
    with pytest.raises(SecretBackendError, match="binary"):
        secret(f"aws-sm://{secret_name}").load()


def test_metadata_from_describe_secret(sm: Any, secret_name: str) -> None:
    """metadata() reports CreatedDate, the last change, and the version holding the stage."""
    created = sm.create_secret(Name=secret_name, SecretString="CANARY-aws-meta")
    meta = secret(f"aws-sm://{secret_name}").metadata()
    assert meta is not None
    assert meta.created_at is not None
    assert meta.rotated_at is not None
    assert meta.version == created["VersionId"]


@pytest.mark.parametrize("module", ["boto3", "botocore.exceptions"])
def test_missing_extra(module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without boto3 the error names the library users know, and `pip install 'coinguard[aws]'`."""
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ConfigurationError) as info:
        secret("aws-sm://x").load()
    assert str(info.value) == (
        "secret aws-sm://x needs the 'boto3' library; run: pip install 'coinguard[aws]'"
    )


def test_rotation_under_load(sm: Any, secret_name: str, no_leak: Callable[..., None]) -> None:
    """Threads loading AWSCURRENT while it rotates never fail, and then get the new value."""
    old, new = "CANARY-aws-v1", "CANARY-aws-v2"
    first = sm.create_secret(Name=secret_name, SecretString=old)["VersionId"]
    clock = FakeClock()
    cached = secret(f"aws-sm://{secret_name}", ttl=300, clock=clock)
    assert cached.load().reveal() == old

    # One ref per thread with ttl=0, so every load is a real GetSecretValue on the server.
    refs = [secret(f"aws-sm://{secret_name}", ttl=0) for _ in range(4)]
    seen: list[list[str]] = [[] for _ in refs]
    errors: list[BaseException] = []
    got_new = [threading.Event() for _ in refs]
    started = threading.Barrier(len(refs) + 1)
    stop = threading.Event()

    def worker(i: int) -> None:
        started.wait(10)
        while not stop.is_set() or len(seen[i]) < 20:
            try:
                value = refs[i].load().reveal()
            except BaseException as exc:  # any failed load fails the test
                errors.append(exc)
                return
            seen[i].append(value)
            if value == new:
                got_new[i].set()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(refs))]
    for thread in threads:
        thread.start()
    started.wait(10)
    token = str(uuid.uuid4())
    sm.put_secret_value(
        SecretId=secret_name,
        ClientRequestToken=token,
        SecretString=new,
        VersionStages=["AWSPENDING"],
    )
    assert secret(f"aws-sm://{secret_name}").load().reveal() == old  # pending is not current
    sm.update_secret_version_stage(
        SecretId=secret_name,
        VersionStage="AWSCURRENT",
        MoveToVersionId=token,
        RemoveFromVersionId=first,
    )
    all_switched = all(event.wait(30) for event in got_new)
    stop.set()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert all_switched
    for values in seen:
        assert set(values) <= {old, new}
        assert values[-1] == new
        assert old not in values[values.index(new) :]  # no flip-flop after the switch
    stages = sm.describe_secret(SecretId=secret_name)["VersionIdsToStages"]
    assert stages[first] == ["AWSPREVIOUS"]
    assert cached.load().reveal() == old  # still within its ttl
    clock.now += 301
    assert cached.load().reveal() == new
    assert cached.refresh().reveal() == new
    previous = secret(f"aws-sm://{secret_name}?stage=AWSPREVIOUS")
    assert previous.load().reveal() == old
    no_leak("CANARY-aws", cached, previous, *refs)
