"""Signed manifests: HMAC-SHA256 over a canonical JSON serialisation.

The key comes from the environment variable named by ``Storage.Catalog.SigningKeyEnv`` or from
the file ``Storage.Catalog.SigningKeyFile`` (relative to the archive root); the key itself never
enters the tree or the catalog, only its ``key_id`` (a short hash of it), so a verifier can tell
"wrong key" from "tampered". Canonical form: keys sorted, no whitespace, UTF-8 — any change of a
value, a key or the entry order changes the signature.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path

from mdcsql.errors import ConfigError

__all__ = ["ALG", "SigningKey", "canonical", "signing_key", "signing_required", "require_key",
           "sign", "check"]

ALG = "HMAC-SHA256"


@dataclass(frozen=True)
class SigningKey:
    secret: bytes
    key_id: str
    where: str           # "env MDCSQL_KEY" or "file keys/hmac.key" (for messages)

    def __repr__(self) -> str:        # never print the secret
        return f"SigningKey(key_id={self.key_id!r}, where={self.where!r})"


def canonical(doc) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _make(secret: bytes, where: str) -> SigningKey:
    return SigningKey(secret, "sha256:" + hashlib.sha256(secret).hexdigest()[:16], where)


def signing_required(settings) -> bool:
    cat = settings.storage.catalog
    return bool(cat and cat.sign_manifests)


def signing_key(root, settings) -> SigningKey | None:
    """The configured key, or None when none is configured or the variable/file is absent."""
    cat = settings.storage.catalog
    if cat is None:
        return None
    if cat.signing_key_env:
        value = os.environ.get(cat.signing_key_env)
        if value:
            return _make(value.encode("utf-8"), f"environment variable {cat.signing_key_env}")
    if cat.signing_key_file:
        path = Path(cat.signing_key_file)
        path = path if path.is_absolute() else Path(root) / path
        if path.is_file():
            secret = path.read_bytes().strip()
            if secret:
                return _make(secret, f"file {cat.signing_key_file}")
    return None


def require_key(root, settings) -> SigningKey:
    """The key for signing; a clear ConfigError when signing is required and no key is found."""
    key = signing_key(root, settings)
    if key is None:
        cat = settings.storage.catalog
        where = []
        if cat and cat.signing_key_env:
            where.append(f"environment variable {cat.signing_key_env} is unset or empty")
        if cat and cat.signing_key_file:
            where.append(f"key file {cat.signing_key_file} is missing or empty")
        raise ConfigError("Storage.Catalog.SignManifests is true but there is no signing key: "
                          + ("; ".join(where) if where else
                             "set Storage.Catalog.SigningKeyEnv (a variable name) or SigningKeyFile"))
    return key


def sign(doc, key: SigningKey) -> dict:
    value = hmac.new(key.secret, canonical(doc), hashlib.sha256).hexdigest()
    return {"alg": ALG, "key_id": key.key_id, "value": value}


def check(doc, signature: dict | None, key: SigningKey | None) -> str | None:
    """None when ``signature`` is a valid signature of ``doc`` by ``key``; else what is wrong."""
    if not signature:
        return "not signed"
    if not isinstance(signature, dict) or signature.get("alg") != ALG:
        return f"unknown signature algorithm {signature.get('alg') if isinstance(signature, dict) else signature!r}"
    if key is None:
        return "signed, but no signing key is configured to verify it"
    if signature.get("key_id") != key.key_id:
        return f"signed with key {signature.get('key_id')}, the configured key is {key.key_id}"
    expected = hmac.new(key.secret, canonical(doc), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, str(signature.get("value", ""))):
        return "signature does not match the content (the manifest was changed after signing)"
    return None
