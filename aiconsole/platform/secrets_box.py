"""Provider secrets encrypted at rest with Fernet, under a key derived from the settings' secret key.

`Settings.resolved_secret_key()` is a free-form string of at least 32 characters (an environment variable
or a generated file), while Fernet wants exactly 32 random bytes, urlsafe-base64 encoded. The Fernet key is
HKDF-SHA256 of that string (RFC 5869, a fixed salt and a purpose label): any long string maps to a uniform
32-byte key, and the label keeps this key apart from anything else ever derived from the same setting.
A plain SHA-256 would also work for a high-entropy input; HKDF is the standard tool for deriving keys and
costs nothing more.

Tokens carry their own integrity check: a token made under another secret key (the key was rotated, or the
data dir with the generated key was lost) fails to decrypt with a ConfigError that says so. No message
here ever contains the secret.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from aiconsole.platform.errors import ConfigError
from aiconsole.platform.settings import Settings, get_settings

MASK = "••••"
_SALT = b"aiconsole provider secrets v1"
_INFO = b"fernet key for provider_configs.encrypted_secret"


@lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO).derive(secret_key.encode("utf-8"))
    return Fernet(base64.urlsafe_b64encode(raw))


def _box(settings: Settings | None) -> Fernet:
    return _fernet((settings or get_settings()).resolved_secret_key())


def encrypt(text: str, *, settings: Settings | None = None) -> str:
    """The Fernet token (ASCII) of `text` under the settings' secret key."""
    return _box(settings).encrypt(text.encode("utf-8")).decode("ascii")


def decrypt(token: str, *, settings: Settings | None = None) -> str:
    """The text of a token made by `encrypt`; ConfigError when it was made under another secret key."""
    try:
        return _box(settings).decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError, ValueError):
        # `from None`: the cryptography exception adds nothing a user can act on.
        raise ConfigError(
            "A stored provider secret cannot be decrypted: the secret key (AICONSOLE_SECRET_KEY or "
            "secret.key in the data dir) is not the one it was saved with.",
            hint="Restore the original secret key, or enter the provider's key again on the Providers page.",
        ) from None


def last4(text: str) -> str:
    """The last four characters of a secret (what may be stored and shown in clear)."""
    return text[-4:]


def mask(text: str | None) -> str:
    """'••••abcd' for a secret ending in abcd (only the last 4 shown); '' when there is none."""
    if not text:
        return ""
    return MASK + last4(text)
