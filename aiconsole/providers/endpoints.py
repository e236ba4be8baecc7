"""Where a provider call, and so the stored key, may go: the provider's own host over https, or a host an
admin listed in AICONSOLE_PROVIDER_HOST_ALLOWLIST.

The allow-list is comma-separated. A bare host (`eu-vision.googleapis.com`, `proxy.corp.example`) allows
https to it; an entry written `http://host` also allows plain http to that host, which an admin writes only
for a loopback emulator or a proxy inside their network. Hosts match exactly (any port). The one exception
is the demo emulator (`AICONSOLE_DEMO_EMULATOR_URL`): a demo organization may name it as its endpoint,
because its calls go there anyway (see `aiconsole.providers.emulation`) and carry no real key.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiconsole.platform.settings import Settings
from aiconsole.providers.registry import capabilities

ALLOWLIST_SETTING = "AICONSOLE_PROVIDER_HOST_ALLOWLIST"


def allowlist(settings: Settings) -> tuple[tuple[str, str], ...]:
    """The admin's allow-list as (lowest scheme allowed, host) pairs: ('https', host) or ('http', host)."""
    out = []
    for entry in settings.provider_host_allowlist.split(","):
        entry = entry.strip().lower()
        if entry:
            scheme, _, host = entry.rpartition("://")
            out.append(("http" if scheme == "http" else "https", host))
    return tuple(out)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def endpoint_refusal(provider: str, endpoint: str | None, *, settings: Settings,
                     emulator: str | None = None) -> str | None:
    """Why `provider`'s calls (and key) may not go to `endpoint`, or None when they may.

    `emulator` is the demo emulator's URL when the organization is a demo one that uses it.
    """
    if endpoint is None:
        return None
    if emulator is not None and _origin(endpoint) == _origin(emulator):
        return None
    scheme, host, _port = _origin(endpoint)
    default = urlsplit(capabilities(provider).default_endpoint or "").hostname
    if scheme == "https" and host == default:
        return None
    for lowest, allowed in allowlist(settings):
        if host == allowed and (scheme == "https" or (scheme == "http" and lowest == "http")):
            return None
    listed = ", ".join(f"{s}://{h}" if s == "http" else h for s, h in allowlist(settings)) or "empty"
    if scheme != "https" and host == default:
        why = f"{host} is reached over https only"
    elif scheme != "https" and any(h == host for _s, h in allowlist(settings)):
        why = f"{host} is allow-listed for https only (list it as http://{host} to allow plain http)"
    else:
        why = f"{host or 'it'} is neither {default} nor in {ALLOWLIST_SETTING} (now: {listed})"
    return (f"the {provider} endpoint {endpoint[:200]} is not allowed: the key is sent only over https to {default} "
            f"or to a host an admin allow-listed; {why}")
