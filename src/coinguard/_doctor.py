"""``coinguard doctor``: where each key comes from, and what is unsafe about the setup.

:func:`diagnose` resolves the keys exactly as a client does (``COINGUARD_<SCOPE>_KEY``, ``_FILE``,
``_REF``, then the provider's variable), checks the files and the git repository around them and,
with ``verify=True``, asks the provider what each key may do. A :class:`Report` holds sources,
fingerprints, ages, permissions and findings, never a key value.

>>> report = diagnose(provider="sandbox")  # doctest: +SKIP
>>> report.exit_code, [f.code for f in report.findings]  # doctest: +SKIP
(1, ['missing-key'])
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import stat
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from ._client import Client
from ._exceptions import (
    CoinguardError,
    ConfigurationError,
    KeyAgeWarning,
    KeyPrivilegeWarning,
    MissingKeyError,
)
from ._keys import EnvSource, FileSource, KeyMetadata, KeySource, ValueSource, resolve_source
from ._origin import check_base_url
from ._provider import Provider, SignedKey, get_provider
from ._secret import Secret
from ._secrets import SecretRef, check_age
from ._secrets._base import parse_ref
from ._settings import key_fields, load_general_settings, load_scope_settings, unread_dotenv
from ._verify import KeyPermissions, findings_for

__all__ = ["Finding", "KeyInfo", "Report", "diagnose", "render"]

Severity = Literal["high", "medium"]
_RANK = {"high": 0, "medium": 1}
MAX_SCAN_BYTES = 5 * 1024 * 1024
_TEMPLATE_SUFFIXES = {"example", "sample", "template", "dist"}


@dataclass(frozen=True)
class Finding:
    """One problem, with a one-line fix. ``path``/``line`` locate a leak; never its text."""

    code: str
    severity: Severity
    message: str
    fix: str
    scope: str | None = None
    path: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class KeyInfo:
    """What is known about one scope's key: where it comes from and its fingerprint, no value."""

    scope: str
    source: str | None = None
    reference: str | None = None
    fingerprint: str | None = None
    created_at: datetime | None = None
    rotated_at: datetime | None = None
    expires_at: datetime | None = None
    permissions: tuple[str, ...] | None = None  # e.g. ("read", "trade"), from --verify
    note: str | None = None
    plan: str | None = None  # as the provider reports it, from --verify
    usage: tuple[str, ...] = ()  # e.g. "this month: 8 of 10,000 used", from --verify


@dataclass(frozen=True)
class Report:
    """The result of :func:`diagnose`; ``exit_code`` is 0 without findings, else 1."""

    provider: str
    base_url: str | None
    verified: bool
    checked_at: datetime
    keys: tuple[KeyInfo, ...]
    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = ()  # how the setup was resolved; not problems

    @property
    def ok(self) -> bool:
        """True when there is nothing to fix."""
        return not self.findings

    @property
    def exit_code(self) -> int:
        """The CLI's exit status for this report."""
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: fingerprints and sources only."""
        return {
            "ok": self.ok,
            "provider": self.provider,
            "base_url": self.base_url,
            "verified": self.verified,
            "checked_at": self.checked_at.isoformat(),
            "keys": [{k: _jsonable(v) for k, v in vars(key).items()} for key in self.keys],
            "findings": [vars(f).copy() for f in self.findings],
            "notes": list(self.notes),
        }

    def render(self) -> str:
        """The human-readable report (what ``coinguard doctor`` prints).

        >>> print(diagnose(provider="sandbox").render())  # doctest: +SKIP
        """
        return render(self)


@dataclass
class _Key:
    scope: str
    source: KeySource | None = None
    secret: Secret | None = None
    meta: KeyMetadata | None = None
    perms: KeyPermissions | None = None
    note: str | None = None
    signing: KeySource | None = None  # a signed provider's secret of this scope


@dataclass(frozen=True)
class _Policy:
    max_age: timedelta
    expiry_warning: timedelta
    now: datetime


def diagnose(
    *,
    provider: Provider | str = "generic",
    plan: str | None = None,
    base_url: str | None = None,
    env_file: str | Path | None = None,
    trade: bool = False,
    verify: bool = False,
    max_age: timedelta = timedelta(days=90),
    expiry_warning: timedelta = timedelta(days=7),
    cwd: str | Path | None = None,
    now: datetime | None = None,
) -> Report:
    """Check the key setup a client would see; no network I/O unless ``verify=True``.

    The trade key is only looked at with ``trade=True``. Age and privilege findings go into the
    report instead of being warned or logged. Raises :class:`CoinguardError` for a setup that
    cannot be checked (unknown provider, unsafe base URL, ``verify`` without a key-info route).

    >>> diagnose(provider="sandbox", trade=True).findings[0].code  # doctest: +SKIP
    'missing-key'
    """
    prov = get_provider(provider) if isinstance(provider, str) else provider
    chosen = plan if plan is not None else load_general_settings(env_file).plan
    if chosen is not None and (plan is not None or prov.plans):
        prov = prov.with_plan(chosen)  # as a client picks it: plan=, else COINGUARD_PLAN
    here = Path(cwd) if cwd else Path.cwd()
    notes = []
    # the base URL and ./.env exactly as a client resolves them
    from_settings = load_general_settings(env_file).base_url
    url = base_url or from_settings or prov.base_url
    if not base_url and from_settings:
        notes.append("base URL from COINGUARD_BASE_URL, as a client would use it")
    dotenv = unread_dotenv(
        env_file, 'pass --env-file .env to read it, as Client(env_file=".env") would', here
    )
    if dotenv:
        notes.append(dotenv)
    if url:
        check_base_url(url, prov.name)
    if verify and (prov.key_check is None or not url):
        raise ConfigurationError(
            f"provider {prov.name!r} has no key-info route or base URL to verify against"
        )
    policy = _Policy(max_age, expiry_warning, now or datetime.now(timezone.utc))
    found: list[Finding] = []
    keys: list[_Key] = []
    with _quiet():
        for scope in ("read", "trade") if trade else ("read",):
            keys.append(_examine(scope, prov, env_file, verify, policy, found))
        found += _same_key(keys)
        if verify:
            for key in keys:
                _verify(key, prov, url, policy, found)
    found += _file_modes(keys, env_file)
    found += _git_checks(here, keys, env_file)
    return Report(
        provider=prov.name if prov.plan is None else f"{prov.name} ({prov.plan} plan)",
        base_url=url,
        verified=verify,
        checked_at=policy.now,
        keys=tuple(_info(k, env_file) for k in keys),
        findings=tuple(sorted(found, key=lambda f: _RANK[f.severity])),
        notes=tuple(notes),
    )


@contextmanager
def _quiet() -> Iterator[None]:
    # The report carries every age and privilege finding; the library's warnings would repeat them.
    keys_log = logging.getLogger("coinguard.keys")

    def drop(record: logging.LogRecord) -> bool:
        return False

    keys_log.addFilter(drop)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", KeyAgeWarning)
            warnings.simplefilter("ignore", KeyPrivilegeWarning)
            yield
    finally:
        keys_log.removeFilter(drop)


def _examine(
    scope: str,
    prov: Provider,
    env_file: str | Path | None,
    fetch: bool,
    policy: _Policy,
    found: list[Finding],
) -> _Key:
    key = _Key(scope)
    var = f"COINGUARD_{scope.upper()}_KEY"
    provider_env = prov.read_key_env if scope == "read" else prov.trade_key_env
    try:
        fields = key_fields(load_scope_settings(scope, env_file), scope)
        key.source = resolve_source(scope, None, fields, provider_env)
        if not (key.source.local or fetch):
            key.note = "kept in a remote secret store: not fetched without --verify"
            return key
        key.secret = key.source.load()
    except MissingKeyError as exc:
        fix = f"set {var}, {var}_FILE or {var}_REF" + (
            f" (or {provider_env})" if provider_env else ""
        )
        # The CLI has no key arguments; the rest of the list is where it looked.
        message = str(exc).replace(f"the {scope}_key argument, ", "")
        found.append(Finding("missing-key", "high", message, fix, scope))
        return key
    except CoinguardError as exc:
        found.append(Finding("unreadable-key", "high", str(exc), "fix the key source", scope))
        return key
    if isinstance(key.source, SecretRef):
        with suppress(CoinguardError):
            key.meta = key.source.metadata()
        found += _age(scope, key.meta, policy, "secret store")
    if isinstance(prov.auth, SignedKey):
        key.signing = _signing_source(scope, prov, env_file, found)
    return key


def _signing_source(
    scope: str, prov: Provider, env_file: str | Path | None, found: list[Finding]
) -> KeySource | None:
    """Where a signed provider's secret of ``scope`` comes from; a finding when nowhere."""
    var = f"COINGUARD_{scope.upper()}_SECRET"
    env = getattr(prov, f"{scope}_secret_env")
    try:
        fields = key_fields(load_scope_settings(scope, env_file), scope, "secret")
        return resolve_source(scope, None, fields, env, "secret")
    except MissingKeyError as exc:
        fix = f"set {var}, {var}_FILE or {var}_REF" + (f" (or {env})" if env else "")
        message = str(exc).replace(f"the {scope}_secret argument, ", "")
        found.append(Finding("missing-secret", "high", message, fix, scope))
    except CoinguardError as exc:
        found.append(Finding("unreadable-key", "high", str(exc), "fix the secret source", scope))
    return None


def _age(scope: str, meta: KeyMetadata | None, policy: _Policy, by: str) -> list[Finding]:
    texts = check_age(
        meta, max_age=policy.max_age, expiry_warning=policy.expiry_warning, now=policy.now
    )
    fix = "rotate the key: issue a new one, switch over, revoke the old one"
    return [
        Finding(
            "key-age",
            "high" if t.startswith("key expired") else "medium",
            f"the {scope} key: {t} ({by})",
            fix,
            scope,
        )
        for t in texts
    ]


def _same_key(keys: list[_Key]) -> list[Finding]:
    secrets = [k.secret for k in keys if k.secret is not None]
    if len(secrets) == 2 and secrets[0] == secrets[1]:
        message = f"the read and trade keys are the same key ({secrets[0].fingerprint})"
        fix = "create a separate read-only key and use it as the read key"
        return [Finding("same-key", "high", message, fix)]
    return []


def _verify(
    key: _Key, prov: Provider, url: str | None, policy: _Policy, found: list[Finding]
) -> None:
    if key.source is None or key.secret is None:
        return
    if isinstance(prov.auth, SignedKey) and key.signing is None:
        return  # the missing secret is a finding already
    # One read-only client per key: the key-info route takes any key, a trade key is never put
    # in a trading client, and a read key equal to the trade key cannot stop the check. A
    # signed provider's key goes with its own scope's secret.
    try:
        with Client(
            provider=prov,
            base_url=url,
            read_key=key.source,
            read_secret=key.signing,
            max_retries=0,
            timeout=10.0,
        ) as client:
            (result,) = client.verify_key(on_finding="ignore", max_age=policy.max_age)
    except CoinguardError as exc:
        fix = "check the key, the base URL and the network"
        message = f"the {key.scope} key could not be verified: {exc}"
        found.append(Finding("verify-failed", "medium", message, fix, key.scope))
        return
    key.perms = result.permissions
    too_much = findings_for(key.scope, key.perms)
    if too_much:
        allowed = "read" if key.scope == "read" else "trade, never withdraw"
        fix = f"create a key with only {allowed} permission and replace this one"
        message = "; ".join(too_much) + " (provider key-info)"
        found.append(Finding("over-privileged", "high", message, fix, key.scope))
    meta = KeyMetadata(created_at=key.perms.created_at, expires_at=key.perms.expires_at)
    found += _age(key.scope, meta, policy, "provider key-info")


def _file_modes(keys: list[_Key], env_file: str | Path | None) -> list[Finding]:
    files: dict[Path, str] = {}
    for key in keys:
        if isinstance(key.source, FileSource):
            files[key.source.path] = f"{key.scope} key file"
        elif isinstance(key.source, SecretRef):
            ref = parse_ref(key.source.reference)
            if ref.scheme in ("file", "dotenv"):
                files[Path(ref.path)] = f"{key.scope} key {ref.scheme}:// file"
    if env_file:
        files.setdefault(Path(env_file), "env file")
    found = []
    for path, what in files.items():
        with suppress(OSError):
            mode = stat.S_IMODE(path.stat().st_mode)
            # The bits, not os.access: root reads anything, yet a 0644 file is still exposed.
            if mode & 0o077:
                who = (
                    "group"
                    if not mode & 0o007
                    else "others"
                    if not mode & 0o070
                    else "group and others"
                )
                message = f"{path} ({what}) is open to {who} (mode {mode:04o})"
                fix = f"chmod 600 {shlex.quote(str(path))}"
                found.append(Finding("file-permissions", "medium", message, fix, path=str(path)))
    return found


def _git_checks(cwd: Path, keys: list[_Key], env_file: str | Path | None) -> list[Finding]:
    tracked = _tracked_files(cwd)
    if tracked is None:
        return []
    root, names = tracked
    env_path = Path(env_file).resolve() if env_file else None
    found = []
    for name in names:
        if _is_env_name(name) or (env_path is not None and (root / name).resolve() == env_path):
            fix = f"git rm --cached {shlex.quote(name)}, add it to .gitignore, rotate its keys"
            message = f"{name} is tracked by git"
            found.append(Finding("env-file-tracked", "high", message, fix, path=name))
    return found + _leaks(root, names, keys)


def _is_env_name(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    if base == ".env":
        return True
    return base.startswith(".env.") and base.rsplit(".", 1)[-1] not in _TEMPLATE_SUFFIXES


def _tracked_files(cwd: Path) -> tuple[Path, list[str]] | None:
    git = shutil.which("git")
    if git is None:
        return None
    top = _run_git([git, "rev-parse", "--show-toplevel"], cwd)
    if top is None:
        return None
    root = Path(top.strip())
    listing = _run_git([git, "ls-files", "-z"], root)
    return None if listing is None else (root, [n for n in listing.split("\0") if n])


def _run_git(argv: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(  # noqa: S603 - argv list from a fixed command, no shell
            argv, cwd=cwd, capture_output=True, stdin=subprocess.DEVNULL, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return os.fsdecode(done.stdout) if done.returncode == 0 else None


def _leaks(root: Path, names: list[str], keys: list[_Key]) -> list[Finding]:
    needles: dict[bytes, list[str]] = {}
    for key in keys:
        if key.secret is not None:
            needles.setdefault(key.secret.reveal().encode(), []).append(key.scope)
    found: list[Finding] = []
    for name in names if needles else []:
        data = _read_small(root / name)
        if data is None:
            continue
        for needle, scopes in needles.items():
            if needle not in data:
                continue
            label, scope = " and ".join(scopes), scopes[0] if len(scopes) == 1 else None
            fix = "remove it and rotate the key: it stays in the git history"
            found += [
                Finding(
                    "key-in-repo", "high", f"the {label} key is in {name}:{n}", fix, scope, name, n
                )
                for n, line in enumerate(data.split(b"\n"), 1)
                if needle in line
            ]
    return found


def _read_small(path: Path) -> bytes | None:
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SCAN_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    return None if b"\0" in data[:8192] else data


def _info(key: _Key, env_file: str | Path | None) -> KeyInfo:
    source, meta, perms = key.source, key.meta, key.perms
    return KeyInfo(
        scope=key.scope,
        source=source.description if source else None,
        reference=_reference(source, env_file),
        fingerprint=key.secret.fingerprint if key.secret else None,
        created_at=(meta.created_at if meta else None) or (perms.created_at if perms else None),
        rotated_at=meta.rotated_at if meta else None,
        expires_at=(meta.expires_at if meta else None) or (perms.expires_at if perms else None),
        permissions=_can(perms) if perms else None,
        note=key.note or (perms.note if perms and perms.note else None),
        plan=perms.plan if perms else None,
        usage=tuple(str(u) for u in perms.usage) if perms else (),
    )


def _reference(source: KeySource | None, env_file: str | Path | None) -> str | None:
    if isinstance(source, SecretRef):
        return source.reference
    if isinstance(source, FileSource):
        return str(source.path)
    if isinstance(source, EnvSource):
        return source.var
    if isinstance(source, ValueSource):
        var = source.description.removeprefix("settings ")
        # pydantic-settings lets a variable win over the env file.
        return str(env_file) if env_file and var not in os.environ else var
    return None


def _can(perms: KeyPermissions) -> tuple[str, ...]:
    return tuple(n for n in ("read", "trade", "withdraw") if getattr(perms, f"can_{n}"))


def _jsonable(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


def render(report: Report) -> str:
    """The human-readable report: one block per key, then the findings with their fixes.

    >>> print(render(diagnose()))  # doctest: +SKIP
    """
    how = "verified with the provider" if report.verified else "offline; --verify asks the provider"
    lines = [f"coinguard doctor: provider {report.provider}, {report.base_url or 'no base URL'}"]
    lines.append(f"({how})")
    lines += [f"note: {note}" for note in report.notes]
    lines.append("")
    for key in report.keys:
        lines += _render_key(key, report.checked_at)
    if report.ok:
        lines.append("No findings.")
        return "\n".join(lines) + "\n"
    lines.append(f"{len(report.findings)} finding(s):")
    for f in report.findings:
        lines.append(f"  {f.severity.upper():<7} {f.message}")
        lines.append(f"          fix: {f.fix}")
    return "\n".join(lines) + "\n"


def _render_key(key: KeyInfo, now: datetime) -> list[str]:
    source = key.source or "not found"
    if key.reference and key.reference not in source:
        source += f" ({key.reference})"
    rows = [("source", source), ("fingerprint", key.fingerprint or "-")]
    for label in ("created", "rotated", "expires"):
        moment = getattr(key, f"{label}_at")
        if moment is not None:
            rows.append((label, _when(moment, now)))
    if key.permissions is not None:
        rows.append(("permissions", ", ".join(key.permissions) or "none"))
    if key.plan:
        rows.append(("plan", key.plan))
    rows += [("usage", line) for line in key.usage]
    if key.note:
        rows.append(("note", key.note))
    return [f"{key.scope} key"] + [f"  {label:<12} {value}" for label, value in rows] + [""]


def _when(moment: datetime, now: datetime) -> str:
    days = (moment - now).total_seconds() / 86400
    relative = f"in {days:.0f} days" if days >= 0 else f"{-days:.0f} days ago"
    return f"{moment.date().isoformat()} ({relative})"
