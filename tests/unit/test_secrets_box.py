"""Fernet secrets: the key derivation (known answers), round trips, a changed secret key, masking."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from aiconsole.platform import secrets_box
from aiconsole.platform.errors import ConfigError
from aiconsole.platform.settings import Settings

KEY = "AIzaSyKnownAnswerKey0123456789abcdefgh"
# Made once with secret key "k" * 40; it must decrypt forever, or every stored provider key is lost.
PINNED_TOKEN = ("gAAAAABrCGbQ-7HH622FyQqNLI0JKQP0SvL0ytkiT_LJWdXSaG9AeXTKf9tBAbjVxAYcxPHWfre0QSjrhOnCKgCrc5V2ti_yxu9s4"
                "TXmopBkjkVYFA6ubwYv6M4kHGKMMjI9en7yXxHa")


def _settings(secret: str) -> Settings:
    return Settings(secret_key=secret)  # type: ignore[arg-type]


def test_the_fernet_key_is_hkdf_sha256_of_the_secret_key() -> None:
    # RFC 5869 by hand: PRK = HMAC(salt, IKM); the first 32 bytes of OKM = HMAC(PRK, info || 0x01).
    prk = hmac.new(b"aiconsole provider secrets v1", b"k" * 40, hashlib.sha256).digest()
    okm = hmac.new(prk, b"fernet key for provider_configs.encrypted_secret\x01", hashlib.sha256).digest()
    fernet = secrets_box._fernet("k" * 40)
    # Fernet splits its 32-byte key into a signing half and an encryption half.
    assert fernet._signing_key + fernet._encryption_key == okm
    assert okm.hex() == "8f03908b6383c941b72e99e2147a4dfabf2cb3d79116d8d0793e473233e9410e"
    assert base64.urlsafe_b64encode(okm)  # a valid Fernet key


def test_a_pinned_token_still_decrypts() -> None:
    assert secrets_box.decrypt(PINNED_TOKEN, settings=_settings("k" * 40)) == KEY


def test_round_trip_and_the_token_hides_the_text(settings: Settings) -> None:
    token = secrets_box.encrypt(KEY, settings=settings)
    assert KEY not in token and KEY[-8:] not in token
    assert token != secrets_box.encrypt(KEY, settings=settings)  # a fresh IV every time
    assert secrets_box.decrypt(token, settings=settings) == KEY
    doc = '{"type": "service_account", "private_key": "ünïcode"}'
    assert secrets_box.decrypt(secrets_box.encrypt(doc, settings=settings), settings=settings) == doc
    # the generated secret key is kept in the data dir, so a new process decrypts the same token
    assert (settings.data_dir / "secret.key").exists()
    assert secrets_box.decrypt(token, settings=Settings(data_dir=settings.data_dir)) == KEY


def test_another_secret_key_says_so_without_the_secret() -> None:
    token = secrets_box.encrypt(KEY, settings=_settings("a" * 40))
    with pytest.raises(ConfigError, match="not the one it was saved with") as err:
        secrets_box.decrypt(token, settings=_settings("b" * 40))
    assert KEY not in str(err.value) and err.value.__cause__ is None and err.value.__suppress_context__
    with pytest.raises(ConfigError, match="cannot be decrypted"):
        secrets_box.decrypt("not a token at all", settings=_settings("a" * 40))


def test_mask_shows_only_the_last_four() -> None:
    assert secrets_box.mask(KEY) == "••••efgh"
    assert secrets_box.mask("efgh") == "••••efgh"
    assert secrets_box.mask(None) == "" and secrets_box.mask("") == ""
    assert secrets_box.last4(KEY) == "efgh"
