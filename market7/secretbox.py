"""Encryption of secrets at rest (exchange API keys, secrets, passphrases): Fernet keys from the
environment, with rotation.

``settings.MARKET7_SECRETS_KEYS`` is a list of Fernet keys (32 url-safe base64 bytes each) from
``MARKET7_SECRETS_KEY`` (comma-separated); unset: one key generated once into
``var/secrets_key`` (mode 600) and reused, like ``SECRET_KEY``. The **first** key encrypts;
every key decrypts (``cryptography``'s ``MultiFernet``), so a key is rotated without downtime:

1. put a new key first: ``MARKET7_SECRETS_KEY=<new>,<old>`` and restart every process;
2. ``manage.py exchange_accounts_rotate_keys`` re-encrypts every stored secret with ``<new>``;
3. drop the old key: ``MARKET7_SECRETS_KEY=<new>`` and restart.

A token that no key opens raises :class:`SecretUndecryptable` (never the plaintext, never the
key). Tokens are ASCII strings (Fernet's url-safe base64), stored in text columns.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretUndecryptable(Exception):
    """No configured key decrypts a stored secret (the key it was written with is gone)."""


def parse_keys(raw: str, *, name: str = "MARKET7_SECRETS_KEY") -> list[str]:
    """Comma-separated Fernet keys -> list; a malformed key raises ImproperlyConfigured naming the
    variable and the key's position (never its value)."""
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    if not keys:
        raise ImproperlyConfigured(f"{name} is empty; give one or more Fernet keys, comma-separated")
    for i, key in enumerate(keys, 1):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"{name}: key #{i} is not a Fernet key (32 url-safe base64-encoded bytes; "
                'make one with python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())")'
            ) from None
    return keys


def default_keys(var_dir: Path) -> list[str]:
    """The embedded default: a key generated once into ``var_dir/secrets_key`` (mode 600)."""
    path = Path(var_dir) / "secrets_key"
    try:  # O_EXCL: processes starting together agree on the first key written
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as fh:
            fh.write(Fernet.generate_key().decode())
    return parse_keys(path.read_text(), name=str(path))


@lru_cache(maxsize=8)
def _box(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in keys])


def _current() -> MultiFernet:
    return _box(tuple(settings.MARKET7_SECRETS_KEYS))


def encrypt(plaintext: str) -> str:
    """``plaintext`` encrypted with the first key; ``""`` stays ``""`` (no secret)."""
    if not plaintext:
        return ""
    return _current().encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str) -> str:
    """The plaintext of a token from :func:`encrypt`; ``""`` -> ``""``."""
    if not token:
        return ""
    try:
        return _current().decrypt(token.encode("ascii")).decode()
    except InvalidToken:
        raise SecretUndecryptable(
            "a stored secret cannot be decrypted with the configured MARKET7_SECRETS_KEY"
        ) from None


def reencrypt(token: str) -> str:
    """``token`` re-encrypted with the first key (MultiFernet.rotate); ``""`` stays ``""``."""
    if not token:
        return ""
    try:
        return _current().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise SecretUndecryptable(
            "a stored secret cannot be decrypted with the configured MARKET7_SECRETS_KEY"
        ) from None
