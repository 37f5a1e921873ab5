"""``op://vault/item/field``: 1Password through its CLI, ``op read``.

The reference goes to ``op`` as one argv element, never through a shell. Authentication is
``op``'s own (``OP_SERVICE_ACCOUNT_TOKEN``, ``OP_CONNECT_*`` or a signed-in desktop session).
"""

from __future__ import annotations

import shutil
import subprocess

from .._exceptions import ConfigurationError
from .._keys import KeyMetadata
from ._base import ParsedRef, Reason, SecretBackendError

__all__ = ["OnePasswordBackend"]

TIMEOUT_SECONDS = 30.0

# op exits 1 for every failure; its stderr says which kind. Only the kind is kept, never the text.
_STDERR_HINTS: tuple[tuple[str, Reason], ...] = (
    ("isn't an item", "not_found"),
    ("isn't a vault", "not_found"),
    ("isn't a field", "not_found"),
    ("could not find", "not_found"),
    ("not found", "not_found"),
    ("signed in", "access_denied"),
    ("signin", "access_denied"),
    ("unauthorized", "access_denied"),
    ("forbidden", "access_denied"),
    ("session expired", "access_denied"),
    ("authentication", "access_denied"),
)


def _reason_from_stderr(stderr: bytes) -> Reason:
    text = stderr.decode("utf-8", "replace").lower()
    return next((reason for hint, reason in _STDERR_HINTS if hint in text), "unreachable")


class OnePasswordBackend:
    """Runs ``op read <reference>`` with a timeout; stdout is the value."""

    local = False

    def __init__(self, ref: ParsedRef, *, executable: str = "op") -> None:
        parts = ref.text.partition("://")[2].split("?")[0].split("/")
        if len(parts) < 3 or not all(parts):
            raise ConfigurationError(
                f"secret reference {ref.text!r}: write op://vault/item/field "
                "(or op://vault/item/section/field)"
            )
        self.reference = ref.text
        self.executable = executable

    def fetch(self) -> str:
        program = shutil.which(self.executable)
        if program is None:
            raise SecretBackendError(
                self.reference,
                "unreachable",
                f"the 1Password CLI {self.executable!r} is not on PATH",
            )
        try:
            done = subprocess.run(  # noqa: S603 - argv list, no shell; the reference is one argument
                [program, "read", "--no-newline", self.reference],
                capture_output=True,
                timeout=TIMEOUT_SECONDS,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise SecretBackendError(
                self.reference, "unreachable", f"op read timed out after {TIMEOUT_SECONDS:.0f}s"
            ) from None
        except OSError as exc:
            raise SecretBackendError(
                self.reference, "unreachable", f"could not run op ({type(exc).__name__})"
            ) from None
        if done.returncode != 0:
            raise SecretBackendError(
                self.reference,
                _reason_from_stderr(done.stderr),
                f"op read exited with code {done.returncode}",
            )
        try:
            return done.stdout.decode("utf-8")
        except UnicodeDecodeError:
            raise SecretBackendError(self.reference, "invalid", "op printed non-UTF-8") from None

    def metadata(self) -> KeyMetadata | None:
        return None
