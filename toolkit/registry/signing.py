"""Ed25519 release keys: generate, load, sign, verify (securesystemslib over pyca/cryptography).

The private key is a PEM (PKCS#8) file with mode 0600, kept outside the repository (default
~/.config/toolkit/keys/); `TOOLKIT_SIGNING_KEY` or `release.signing.key` names it. The public key
is a PEM file `<registry>/keys/<keyid>.pub`, committed with the project; its key id is the
securesystemslib id (SHA-256 of the key's canonical form), so anyone can recompute it from the PEM.

Nothing here puts key material into an exception message: a file that does not load is reported by
its path and the kind of problem only.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from toolkit.errors import ConfigError

SIGNING_KEY_ENV = "TOOLKIT_SIGNING_KEY"
PUBLIC_SUFFIX = ".pub"


def default_key_dir() -> Path:
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "toolkit" / "keys"


def keyring_dir(registry: Path) -> Path:
    return Path(registry) / "keys"


@dataclass(frozen=True)
class KeyPair:
    keyid: str
    private_path: Path
    public_path: Path


def _public_key(crypto_public_key):
    from securesystemslib.signer import SSlibKey

    return SSlibKey.from_crypto(crypto_public_key)


def public_pem(crypto_public_key) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return crypto_public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def signer_public_pem(signer) -> bytes:
    """The PEM of a signer's Ed25519 public key (securesystemslib keeps it as raw hex)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return public_pem(Ed25519PublicKey.from_public_bytes(bytes.fromhex(signer.public_key.keyval["public"])))


def generate_key(registry: Path, out: Path | None = None) -> KeyPair:
    """A new Ed25519 key pair: the private key (0600) at `out` or in the default key folder, the
    public key in the registry's keyring."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    private = Ed25519PrivateKey.generate()
    keyid = _public_key(private.public_key()).keyid
    private_path = Path(out) if out else default_key_dir() / f"{keyid}.key"
    if private_path.exists():
        raise ConfigError("a file is already there; refusing to overwrite a key", file=str(private_path))
    _refuse_inside_repository(private_path, registry)
    private_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Created with 0600 from the start: the key is never readable by others, not even briefly.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    public_path = keyring_dir(registry) / f"{keyid}{PUBLIC_SUFFIX}"
    public_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.write_bytes(public_pem(private.public_key()))
    return KeyPair(keyid, private_path, public_path)


def _refuse_inside_repository(path: Path, registry: Path) -> None:
    """A private key inside the project's work tree is one `git add -A` away from being published."""
    start = Path(registry).resolve()
    root = next((folder for folder in (start, *start.parents) if (folder / ".git").exists()), None)
    if root is not None and path.resolve().is_relative_to(root):
        raise ConfigError(f"refusing to write a private key inside the git work tree {root}; keep it outside "
                          "the repository (default: ~/.config/toolkit/keys/)", file=str(path))


def signing_key_path(configured: str | None) -> Path | None:
    """The private key to sign with: TOOLKIT_SIGNING_KEY, else release.signing.key, else none."""
    value = os.environ.get(SIGNING_KEY_ENV) or configured
    return Path(value).expanduser() if value else None


def load_signer(path: Path):
    """A securesystemslib CryptoSigner for an Ed25519 private key file."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from securesystemslib.signer import CryptoSigner

    source = "TOOLKIT_SIGNING_KEY" if os.environ.get(SIGNING_KEY_ENV) else "release.signing.key"
    if not path.is_file():
        raise ConfigError(f"signing key not found (set by {source})", file=str(path))
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError("the private key is readable by other users; run `chmod 600` on it", file=str(path))
    try:
        private = load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError):
        # The library's message is not shown: it could quote part of the file.
        raise ConfigError("not an unencrypted PEM (PKCS#8) private key", file=str(path)) from None
    if not isinstance(private, Ed25519PrivateKey):
        raise ConfigError("not an Ed25519 private key (make one with `toolkit keys generate`)", file=str(path))
    return CryptoSigner(private, _public_key(private.public_key()))


def load_public_key(path: Path, data: bytes | None = None):
    """An SSlibKey from a PEM public key file (or from `data`, a PEM block read from that file)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(data if data is not None else Path(path).read_bytes())
    except (ValueError, TypeError, OSError) as exc:
        raise ConfigError(f"not a PEM public key ({type(exc).__name__})", file=str(path)) from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError("not an Ed25519 public key", file=str(path))
    return _public_key(key)


_PEM_BEGIN = b"-----BEGIN PUBLIC KEY-----"


def load_keys(paths: list[Path]) -> dict:
    """keyid -> key, from PEM files (one key, or a keyring file of several concatenated) and folders
    of `*.pub` files."""
    keys = {}
    for path in paths:
        path = Path(path)
        files = sorted(path.glob(f"*{PUBLIC_SUFFIX}")) if path.is_dir() else [path]
        if path.is_dir() and not files:
            raise ConfigError(f"no *{PUBLIC_SUFFIX} public keys in this folder", file=str(path))
        for file in files:
            for key in _keys_in(file):
                keys[key.keyid] = key
    return keys


def _keys_in(file: Path) -> list:
    data = Path(file).read_bytes() if Path(file).is_file() else b""
    blocks = [_PEM_BEGIN + block for block in data.split(_PEM_BEGIN)[1:]]
    return [load_public_key(file, block) for block in blocks] if len(blocks) > 1 else [load_public_key(file)]


def sign_bytes(signer, data: bytes) -> dict:
    signature = signer.sign(data)
    return {"keyid": signature.keyid, "sig": signature.signature}


def signature_problem(signature: dict | None, data: bytes, keys: dict) -> str | None:
    """None when `signature` ({keyid, sig}) verifies over `data` with one of `keys`; else why not."""
    from securesystemslib.exceptions import UnverifiedSignatureError
    from securesystemslib.signer import Signature

    if not isinstance(signature, dict) or not signature.get("keyid") or not signature.get("sig"):
        return "no signature"
    key = keys.get(signature["keyid"])
    if key is None:
        return (f"signed by key {signature['keyid'][:12]}…, which is not among the {len(keys)} trusted key(s) "
                "(rotated out, or never trusted)")
    try:
        key.verify_signature(Signature(signature["keyid"], str(signature["sig"])), data)
    except (UnverifiedSignatureError, ValueError):
        return f"the signature by key {signature['keyid'][:12]}… does not match the signed bytes"
    return None
