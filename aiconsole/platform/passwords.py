"""Password hashing with argon2id (argon2-cffi's maintained defaults)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from aiconsole.platform.errors import ValidationFailed

_hasher = PasswordHasher()
MIN_LENGTH = 8
MAX_LENGTH = 1024


def check_strength(password: str) -> None:
    """Refuse passwords that are too short or absurdly long, with the rule in the message."""
    if len(password) < MIN_LENGTH:
        raise ValidationFailed(f"The password is too short ({len(password)} characters).",
                               hint=f"Use at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        raise ValidationFailed(f"The password is longer than {MAX_LENGTH} characters.")


def hash_password(password: str) -> str:
    """An argon2id hash of `password` (checks its strength first)."""
    check_strength(password)
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when `password` matches; False on mismatch or a malformed hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's defaults."""
    return _hasher.check_needs_rehash(password_hash)
