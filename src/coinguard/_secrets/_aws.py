"""``aws-sm://secret-id#json-field?region=..&stage=AWSCURRENT``: AWS Secrets Manager via boto3.

Credentials, region and endpoint come from the usual boto3 chain (``AWS_PROFILE``,
``AWS_ACCESS_KEY_ID``, ``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL``, instance
roles ...); ``?region=`` and ``?endpoint_url=`` override them for one reference.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .._exceptions import ConfigurationError
from .._keys import KeyMetadata
from ._base import ParsedRef, Reason, SecretBackendError, check_options, import_extra

__all__ = ["AwsBackend"]

_OPTIONS = {"region", "stage", "version_id", "endpoint_url"}

_CODES: dict[str, Reason] = {
    "ResourceNotFoundException": "not_found",
    "AccessDeniedException": "access_denied",
    "AccessDenied": "access_denied",
    "UnrecognizedClientException": "access_denied",
    "InvalidSignatureException": "access_denied",
    "ExpiredTokenException": "access_denied",
    "DecryptionFailure": "access_denied",
    "InvalidParameterException": "invalid",
    "InvalidRequestException": "invalid",
    "ValidationException": "invalid",
}


class AwsBackend:
    """One Secrets Manager secret, read at the ``AWSCURRENT`` stage unless told otherwise.

    Reading a stage (not a version id) keeps working across a rotation: the stage label moves
    from the old version to the new one atomically.
    """

    local = False

    def __init__(self, ref: ParsedRef, *, client_factory: Callable[[], Any] | None = None) -> None:
        check_options(ref, _OPTIONS)
        if not ref.path or ref.fragment == "":
            raise ConfigurationError(
                f"secret reference {ref.text!r}: write aws-sm://secret-id or aws-sm://secret-id#field"
            )
        if "stage" in ref.query and "version_id" in ref.query:
            raise ConfigurationError(f"secret reference {ref.text!r}: give stage or version_id")
        self.reference = ref.text
        self.secret_id = ref.path
        self.field = ref.fragment
        self.region = ref.query.get("region")
        self.endpoint_url = ref.query.get("endpoint_url")
        self.version_id = ref.query.get("version_id")
        self.stage = None if self.version_id else ref.query.get("stage", "AWSCURRENT")
        self._factory = client_factory
        self._client: Any = None
        self._lock = threading.Lock()

    def fetch(self) -> str:
        selector = (
            {"VersionId": self.version_id} if self.version_id else {"VersionStage": self.stage}
        )
        response = self._call("get_secret_value", SecretId=self.secret_id, **selector)
        text = response.get("SecretString")
        if text is None:
            raise SecretBackendError(
                self.reference, "invalid", "the secret is binary, not a string"
            )
        return text if self.field is None else self._pick_field(text)

    def metadata(self) -> KeyMetadata | None:
        described = self._call("describe_secret", SecretId=self.secret_id)
        stages: dict[str, list[str]] = described.get("VersionIdsToStages") or {}
        version = self.version_id or next(
            (vid for vid, labels in stages.items() if self.stage in labels), None
        )
        rotated: datetime | None = described.get("LastRotatedDate") or described.get(
            "LastChangedDate"
        )
        return KeyMetadata(
            created_at=described.get("CreatedDate"), rotated_at=rotated, version=version
        )

    def _pick_field(self, text: str) -> str:
        try:
            document = json.loads(text)
        except ValueError:
            # from None: the decode error keeps the whole document (the secret) in `.doc`.
            raise SecretBackendError(
                self.reference, "invalid", "#field given but the SecretString is not JSON"
            ) from None
        if not isinstance(document, dict) or self.field not in document:
            raise SecretBackendError(
                self.reference, "not_found", f"no field {self.field!r} in the secret's JSON"
            )
        value = document[self.field]
        if not isinstance(value, str):
            raise SecretBackendError(
                self.reference, "invalid", f"field {self.field!r} is {type(value).__name__}"
            )
        return value

    def _call(self, operation: str, **params: Any) -> Any:
        botocore_exc = import_extra("botocore.exceptions", "aws", self.reference)
        client = self._get_client()
        try:
            return getattr(client, operation)(**params)
        except botocore_exc.ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "Unknown"))
            reason = _CODES.get(code, "unreachable")
            raise SecretBackendError(self.reference, reason, f"{operation}: {code}") from None
        except botocore_exc.NoCredentialsError:
            raise SecretBackendError(
                self.reference, "access_denied", "no AWS credentials"
            ) from None
        except (botocore_exc.EndpointConnectionError, botocore_exc.ConnectionError) as exc:
            raise SecretBackendError(
                self.reference, "unreachable", f"{operation}: {type(exc).__name__}"
            ) from None
        except botocore_exc.BotoCoreError as exc:
            raise SecretBackendError(
                self.reference, "unreachable", f"{operation}: {type(exc).__name__}"
            ) from None

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None and self._factory is not None:
                self._client = self._factory()
            if self._client is None:
                boto3 = import_extra("boto3", "aws", self.reference)
                config = import_extra("botocore.config", "aws", self.reference)
                botocore_exc = import_extra("botocore.exceptions", "aws", self.reference)
                try:
                    # A Session per backend: boto3's default session is not thread-safe.
                    self._client = boto3.session.Session().client(
                        "secretsmanager",
                        region_name=self.region,
                        endpoint_url=self.endpoint_url,
                        config=config.Config(
                            connect_timeout=5,
                            read_timeout=10,
                            retries={"max_attempts": 3, "mode": "standard"},
                        ),
                    )
                except botocore_exc.NoRegionError:
                    raise SecretBackendError(
                        self.reference,
                        "invalid",
                        "no AWS region: add ?region=... or set AWS_DEFAULT_REGION",
                    ) from None
            return self._client
