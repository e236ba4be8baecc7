"""The formats a provider secret may take, checked before anything is encrypted or saved.

Gemini takes an API key; Cloud Vision an API key or a service-account JSON key. An API key is `AIza` and
35 characters of [A-Za-z0-9_-]. Nothing is stripped silently: a key pasted with a space or a newline is
refused with a message saying where, because a key "fixed" behind the user's back is a key they cannot
reason about. (A JSON document's whitespace is JSON syntax and is kept as given.) Messages never echo the
secret or any part of it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from aiconsole.platform.errors import ValidationFailed
from aiconsole.providers.registry import capabilities, provider_names

API_KEY_PREFIX = "AIza"
API_KEY_LENGTH = 39
MAX_SECRET_CHARS = 20_000
SERVICE_ACCOUNT_FIELDS = ("type", "private_key", "client_email")
_KEY_CHARS = re.compile(r"[A-Za-z0-9_-]")
_WHITESPACE_NAMES = {" ": "a space", "\t": "a tab", "\n": "a newline", "\r": "a carriage return"}
_HINTS = {
    "gemini": "Copy the key again from Google AI Studio (API keys): 39 characters starting with AIza.",
    "google-vision": "Paste an API key (39 characters starting with AIza) or the whole service-account JSON "
                     "key file from the Google Cloud console.",
}


@dataclass(frozen=True)
class CheckedSecret:
    """A secret that passed its format check: its kind and the 4 characters that may be shown."""

    kind: str  # "api_key" | "service_account"
    last4: str


def _whitespace_name(ch: str) -> str:
    return _WHITESPACE_NAMES.get(ch, "a whitespace character")


def _check_api_key(secret: str, provider: str) -> CheckedSecret:
    hint = _HINTS[provider]
    if secret != secret.strip():
        where = "start" if secret[0].isspace() else "end"
        ch = secret[0] if where == "start" else secret[-1]
        raise ValidationFailed(f"The {provider} key has {_whitespace_name(ch)} at its {where}. Nothing was saved.",
                               hint="Remove it and paste the key alone (aiconsole does not trim keys silently).")
    for i, ch in enumerate(secret, start=1):
        if ch.isspace():
            raise ValidationFailed(f"The {provider} key contains {_whitespace_name(ch)} at character {i}; "
                                   "API keys have no whitespace. Nothing was saved.",
                                   hint="Paste the key again as one unbroken string. " + hint)
    if not secret.startswith(API_KEY_PREFIX):
        raise ValidationFailed(f"That is not a Google API key: they start with '{API_KEY_PREFIX}'. Nothing was "
                               "saved.", hint=hint)
    if len(secret) != API_KEY_LENGTH:
        raise ValidationFailed(f"The {provider} key is {len(secret)} characters long; Google API keys are "
                               f"{API_KEY_LENGTH} ('{API_KEY_PREFIX}' and 35 more). Nothing was saved.",
                               hint="Part of it may be missing or doubled. " + hint)
    for i, ch in enumerate(secret, start=1):
        if not _KEY_CHARS.fullmatch(ch):
            raise ValidationFailed(f"The {provider} key has a character at position {i} that API keys never "
                                   "contain (only letters, digits, '-' and '_'). Nothing was saved.", hint=hint)
    return CheckedSecret("api_key", secret[-4:])


def _check_service_account(secret: str, provider: str) -> CheckedSecret:
    hint = _HINTS[provider]
    try:
        doc: Any = json.loads(secret)
    except ValueError as exc:
        # JSONDecodeError's own text names the problem and its place, never the content.
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not JSON"
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise ValidationFailed(f"The service-account key is not valid JSON: {reason}{where}. Nothing was saved.",
                               hint="Paste the whole downloaded .json key file, from { to }.") from None
    if not isinstance(doc, dict):
        raise ValidationFailed("The service-account key must be a JSON object ({...}). Nothing was saved.",
                               hint=hint)
    missing = [f for f in SERVICE_ACCOUNT_FIELDS if not isinstance(doc.get(f), str) or not doc.get(f)]
    if missing:
        raise ValidationFailed(f"The service-account JSON lacks {', '.join(missing)}. Nothing was saved.",
                               hint="Download a new key for the service account (IAM > Service accounts > Keys "
                                    "> Add key > JSON) and paste the whole file.")
    if doc["type"] != "service_account":
        raise ValidationFailed("That JSON is not a service-account key (its type is not 'service_account'). "
                               "Nothing was saved.",
                               hint="User credentials and other key types are not accepted. " + hint)
    if "PRIVATE KEY" not in doc["private_key"]:
        raise ValidationFailed("The service-account JSON's private_key is not a PEM private key. Nothing was "
                               "saved.", hint="Paste the key file unchanged. " + hint)
    if "@" not in doc["client_email"]:
        raise ValidationFailed("The service-account JSON's client_email is not an email address. Nothing was "
                               "saved.", hint="Paste the key file unchanged. " + hint)
    # The key id identifies which key of the account this is, as the Cloud console lists them.
    shown = str(doc.get("private_key_id") or doc["client_email"].split("@")[0])
    return CheckedSecret("service_account", shown[-4:])


def check_secret(provider: str, secret: str) -> CheckedSecret:
    """The secret's kind and last 4 if its format fits `provider`, else ValidationFailed saying what is wrong."""
    caps = capabilities(provider)
    if not caps.needs_key:
        raise ValidationFailed(f"The {provider} provider takes no key: it runs inside the worker.",
                               hint=f"Keys are for {' and '.join(provider_names(needs_key=True))}.")
    if not secret or not secret.strip():
        raise ValidationFailed(f"The {provider} key is empty. Nothing was saved.", hint=_HINTS[provider])
    if len(secret) > MAX_SECRET_CHARS:
        raise ValidationFailed(f"The {provider} key is {len(secret):,} characters long, more than the "
                               f"{MAX_SECRET_CHARS:,} any Google key file has. Nothing was saved.",
                               hint=_HINTS[provider])
    if secret.lstrip().startswith("{"):
        if not caps.service_account_key:
            raise ValidationFailed(f"{caps.display_name} takes an API key, not a service-account "
                                   "JSON. Nothing was saved.", hint=_HINTS[provider])
        return _check_service_account(secret, provider)
    return _check_api_key(secret, provider)


def secret_fragments(secret: str) -> list[str]:
    """The parts of a secret that must never appear in output: the whole and, for JSON, its private key."""
    parts = [secret]
    if secret.lstrip().startswith("{"):
        try:
            doc = json.loads(secret)
        except ValueError:
            return parts
        if isinstance(doc, dict) and isinstance(doc.get("private_key"), str):
            key = doc["private_key"]
            parts.append(key)
            # the PEM body lines, which an error message might quote one at a time
            parts.extend(line for line in key.splitlines() if len(line) >= 16 and "PRIVATE KEY" not in line)
    return parts


REFLECTED_CHARS = 200


def scrub(text: str, secret: str | None) -> str:
    """`text` with every fragment of `secret` replaced by a mask (for provider error messages)."""
    if not secret:
        return text
    for part in sorted(secret_fragments(secret), key=len, reverse=True):
        if part:
            text = text.replace(part, "••••")
    return text


def reflected(text: str, secret: str | None, *, limit: int = REFLECTED_CHARS) -> str:
    """Provider-supplied text made fit to show: `secret` scrubbed first, whitespace collapsed, at most `limit`
    characters (a hostile endpoint's answer is not echoed at length)."""
    text = " ".join(scrub(text, secret).split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"
