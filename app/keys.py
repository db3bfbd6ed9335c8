"""Signing keys: loaded once per process from KEYS_DIR, kept in memory.

Files are PEM private keys named so that they sort by age (``flask keys generate``
writes ``YYYYmmddTHHMMSS-<alg>.pem``); the newest key signs, every key is
published. ``kid`` is the RFC 7638 JWK thumbprint.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from app.security import b64url

SUPPORTED_ALGS = ("RS256", "ES256")


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    private_key: Any
    public_key: Any
    public_jwk: dict[str, Any]


def _public_jwk(private_key: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(private_key, rsa.RSAPrivateKey):
        alg, jwk = "RS256", json.loads(RSAAlgorithm.to_jwk(private_key.public_key()))
        members = {"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}
    elif isinstance(private_key, ec.EllipticCurvePrivateKey):
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise ValueError("only P-256 EC keys are supported (ES256)")
        alg, jwk = "ES256", json.loads(ECAlgorithm.to_jwk(private_key.public_key()))
        members = {"crv": "P-256", "kty": "EC", "x": jwk["x"], "y": jwk["y"]}
    else:
        raise ValueError("unsupported key type")
    # RFC 7638 §3: required members, lexicographic order, no whitespace.
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    kid = b64url(hashlib.sha256(canonical.encode()).digest())
    return alg, {**members, "kid": kid, "alg": alg, "use": "sig"}


def load_key(pem: bytes) -> SigningKey:
    private_key = serialization.load_pem_private_key(pem, password=None)
    alg, jwk = _public_jwk(private_key)
    return SigningKey(
        kid=jwk["kid"],
        alg=alg,
        private_key=private_key,
        public_key=private_key.public_key(),
        public_jwk=jwk,
    )


class KeyStore:
    """The process's signing keys, newest first, and the public JWKS as bytes."""

    def __init__(self, keys: list[SigningKey]):
        self.keys = keys
        self.by_kid = {k.kid: k for k in keys}
        self.jwks = {"keys": [k.public_jwk for k in keys]}
        self.jwks_bytes = json.dumps(self.jwks, separators=(",", ":")).encode()

    @classmethod
    def from_dir(cls, folder: str | Path) -> KeyStore:
        path = Path(folder)
        files = sorted(path.glob("*.pem"), reverse=True) if path.is_dir() else []
        return cls([load_key(f.read_bytes()) for f in files])

    @property
    def algs(self) -> list[str]:
        return sorted({k.alg for k in self.keys})

    def signing_key(self, alg: str | None = None) -> SigningKey:
        """The newest key, or the newest key of ``alg`` when one is asked for."""
        for key in self.keys:
            if alg is None or key.alg == alg:
                return key
        raise LookupError(f"no signing key for {alg or 'any algorithm'}")


def generate_key_file(folder: str | Path, alg: str = "RS256") -> Path:
    """Write a new private key (mode 0600) and return its path."""
    if alg == "RS256":
        key: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif alg == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        raise ValueError(f"unsupported algorithm {alg}; use one of {', '.join(SUPPORTED_ALGS)}")
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # One clock reading: seconds, then microseconds, so names sort by age within a second.
    now = time.time_ns()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now // 1_000_000_000))
    path = folder / f"{stamp}-{now // 1000 % 1_000_000:06d}-{alg.lower()}.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return path
