"""Provider configuration per organization: limits, endpoint and the encrypted key.

Secrets are written only through `set_secret` (format-checked, Fernet-encrypted, only the last 4 kept in
clear) and never leave this module in clear except into a provider client: rows carry a mask, the audit
log says "key replaced, ends with …abcd" (such entries cannot be reverted: the old key is not kept), and
provider error messages are scrubbed of the key and cut short before they are returned.

A stored key goes only where it was saved for: an endpoint must pass `aiconsole.providers.endpoints`
(https to the provider's own host or an allow-listed one; the demo emulator for demo organizations), and
changing the endpoint or region removes the stored key (the save's notice says so), so it cannot be
redirected to another host. Test connection (`aiconsole.control.provider_connection`) checks the endpoint
again before it calls.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from aiconsole.platform import audit, secrets_box
from aiconsole.platform.actor import Actor
from aiconsole.platform.audit import AuditRow
from aiconsole.platform.db.engine import get_engine, org_session
from aiconsole.platform.db.models import MAX_PARALLEL_CALLS, PROVIDERS, ProviderConfig, User
from aiconsole.platform.db.sql import user_email
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ConflictError, NotFound, ValidationFailed
from aiconsole.platform.settings import Settings, get_settings
from aiconsole.platform.strict_numbers import NOT_A_NUMBER, Float, Int
from aiconsole.providers.emulation import emulator_url, is_demo_org
from aiconsole.providers.endpoints import ALLOWLIST_SETTING, endpoint_refusal
from aiconsole.providers.keys import check_secret
from aiconsole.providers.registry import capabilities, provider_names

ENTITY = "provider_config"
FIELDS = ("enabled", "rate_limit_per_minute", "timeout_seconds", "max_concurrency", "endpoint", "region")
# What the worker uses for a provider without a row (the model's column defaults); a cap at the most is no cap.
DEFAULTS: dict[str, Any] = {"enabled": True, "rate_limit_per_minute": 600, "timeout_seconds": 30.0,
                            "max_concurrency": MAX_PARALLEL_CALLS, "endpoint": None, "region": None}
MAX_ENDPOINT = 512


@dataclass(frozen=True)
class ProviderRow:
    """One provider's settings as the console shows them: never the key, only whether one is set and a mask."""

    provider: str
    enabled: bool
    rate_limit_per_minute: int
    timeout_seconds: float
    max_concurrency: int  # the parallel calls cap; MAX_PARALLEL_CALLS: none
    endpoint: str | None
    region: str | None
    has_secret: bool
    secret_masked: str
    version: int  # 0: nothing saved yet, the defaults apply
    updated_at: datetime | None
    updated_by: str | None
    notice: str = ""  # what a save did beyond the fields, e.g. removing the key after an endpoint change


class ProviderSettingsInput(BaseModel):
    """The non-secret settings of a provider, with the allowed ranges and why."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool
    rate_limit_per_minute: Int = Field(ge=1, le=100_000)
    timeout_seconds: Float = Field(ge=1.0, le=300.0)
    max_concurrency: Int = Field(ge=1, le=MAX_PARALLEL_CALLS)
    endpoint: str | None = None
    region: str | None = None

    @field_validator("endpoint", mode="before")
    @classmethod
    def _endpoint(cls, v: Any) -> str | None:
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        text = str(v)
        if text != text.strip() or any(ch.isspace() for ch in text):
            raise ValueError("must not contain spaces or line breaks")
        if len(text) > MAX_ENDPOINT:
            raise ValueError(f"is longer than {MAX_ENDPOINT} characters")
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host, e.g. https://vision.googleapis.com")
        if parts.username or parts.password:
            # the endpoint is shown and audited in clear; credentials belong in the key field
            raise ValueError("must not contain a user name or password; put credentials in the key field")
        return text

    @field_validator("region", mode="before")
    @classmethod
    def _region(cls, v: Any) -> str | None:
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        text = str(v)
        if len(text) > 64 or not all(ch.islower() or ch.isdigit() or ch == "-" for ch in text):
            raise ValueError("must be a region name of lower-case letters, digits and '-', e.g. us-central1 or eu")
        return text


_WHY = {
    "rate_limit_per_minute": "requests per minute shared by all workers, 1 to 100,000 (to stop calls, untick "
                             "Enabled instead of setting 0)",
    "timeout_seconds": "seconds to wait for one answer, 1 to 300 (a slow provider must still answer before the "
                       "photo's lease runs out)",
    "max_concurrency": f"the most of the organization's parallel calls per worker this provider gets at once, 1 to "
                       f"{MAX_PARALLEL_CALLS} (empty: no cap)",
}
_LABELS = {"rate_limit_per_minute": "Rate limit", "timeout_seconds": "Timeout", "max_concurrency": "Parallel calls cap",
           "endpoint": "Endpoint", "region": "Region", "enabled": "Enabled"}


def validate_settings(values: dict[str, Any], *, provider: str, settings: Settings) -> ProviderSettingsInput:
    """The checked settings, or ValidationFailed naming every bad field with its allowed range and why."""
    try:
        checked = ProviderSettingsInput.model_validate(values)
    except PydanticValidationError as exc:
        problems = []
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else "settings"
            msg = str(err["msg"]).removeprefix("Value error, ")
            reason = msg if err["type"] == NOT_A_NUMBER else _WHY.get(name) or msg
            problems.append(f"{_LABELS.get(name, name)} {reason}")
        raise ValidationFailed(f"{provider}: " + "; ".join(problems) + ". Nothing was saved.") from None
    if checked.timeout_seconds >= settings.lease_seconds:
        raise ValidationFailed(f"{provider}: Timeout {checked.timeout_seconds:g} s is not shorter than the photo "
                               f"lease ({settings.lease_seconds} s); a call that slow would lose its photo to "
                               "another worker. Nothing was saved.", hint="Lower the timeout.")
    if not capabilities(provider).has_endpoint and (checked.endpoint or checked.region):
        raise ValidationFailed(f"{provider} runs inside the worker: it has no endpoint or region. Nothing was saved.",
                               hint="Clear the endpoint and region fields.")
    return checked


def settings_state(pc: ProviderConfig | None) -> dict[str, Any]:
    """The non-secret settings a provider row (or, without one, the defaults) gives the worker."""
    if pc is None:
        return dict(DEFAULTS)
    return {f: getattr(pc, f) for f in FIELDS}


def _row(pc: ProviderConfig | None, provider: str, updated_by: str | None) -> ProviderRow:
    state = settings_state(pc)
    return ProviderRow(
        provider=provider, enabled=bool(state["enabled"]), rate_limit_per_minute=int(state["rate_limit_per_minute"]),
        timeout_seconds=float(state["timeout_seconds"]), max_concurrency=int(state["max_concurrency"]),
        endpoint=state["endpoint"], region=state["region"],
        has_secret=pc is not None and pc.encrypted_secret is not None,
        secret_masked=secrets_box.mask(pc.secret_last4) if pc is not None and pc.encrypted_secret else "",
        version=pc.version if pc is not None else 0, updated_at=pc.updated_at if pc is not None else None,
        updated_by=updated_by)


def load_config(s: Session, organization_id: int, provider: str, *, lock: bool = False) -> ProviderConfig | None:
    """The organization's row for `provider` (locked for update when `lock`), or None."""
    query = select(ProviderConfig).where(ProviderConfig.organization_id == organization_id,
                                         ProviderConfig.provider == provider)
    return s.scalar(query.with_for_update() if lock else query)


def list_providers(actor: Actor, *, settings: Settings | None = None) -> list[ProviderRow]:
    """Every provider's settings for the actor's organization (defaults where nothing was saved)."""
    actor.require("pipeline.view")
    with org_session(actor.organization_id, engine=get_engine(settings)) as s:
        rows = s.execute(
            select(ProviderConfig, User.email).outerjoin(User, User.id == ProviderConfig.updated_by)
            .where(ProviderConfig.organization_id == actor.organization_id)).all()
        by_name = {pc.provider: (pc, email) for pc, email in rows}
        return [_row(by_name[p][0], p, by_name[p][1]) if p in by_name else _row(None, p, None) for p in PROVIDERS]


def emulated_providers(actor: Actor, *, settings: Settings | None = None) -> dict[str, str]:
    """{provider: emulator URL} for the providers whose calls this organization sends to the emulator."""
    actor.require("pipeline.view")
    with org_session(actor.organization_id, engine=get_engine(settings)) as s:
        url = emulator_url(is_demo=is_demo_org(s, organization_id=actor.organization_id), settings=settings)
    return {p: url for p in provider_names(emulatable=True)} if url else {}


def get_provider(actor: Actor, *, provider: str, settings: Settings | None = None) -> ProviderRow:
    """One provider's settings (masked)."""
    capabilities(provider)  # NotFound for an unknown provider
    return next(r for r in list_providers(actor, settings=settings) if r.provider == provider)


def _touch(pc: ProviderConfig, actor: Actor) -> None:
    pc.version += 1
    pc.updated_by = actor.user_id
    pc.updated_at = utcnow()


def _row_for_update(s: Session, actor: Actor, provider: str) -> ProviderConfig:
    pc = load_config(s, actor.organization_id, provider, lock=True)
    if pc is None:
        pc = ProviderConfig(organization_id=actor.organization_id, provider=provider, price_overrides={},
                            version=0, **DEFAULTS)
        s.add(pc)
    return pc


def _check_endpoint(s: Session, actor: Actor, provider: str, endpoint: str | None, settings: Settings) -> None:
    """ValidationFailed unless `endpoint` may receive this organization's `provider` calls and key."""
    emulator = emulator_url(is_demo=is_demo_org(s, organization_id=actor.organization_id), settings=settings)
    refusal = endpoint_refusal(provider, endpoint, settings=settings, emulator=emulator)
    if refusal is not None:
        raise ValidationFailed(f"{provider}: {refusal[0].upper()}{refusal[1:]}. Nothing was saved.",
                               hint=f"Leave the endpoint empty for the provider's own, or have whoever runs "
                                    f"aiconsole add the host to {ALLOWLIST_SETTING}.")


def _remove_key(s: Session, actor: Actor, pc: ProviderConfig, provider: str, *, why: str = "") -> str:
    """Remove the stored key and audit it; returns the key's last 4 (the caller has locked the row)."""
    last4 = pc.secret_last4 or ""
    pc.encrypted_secret, pc.secret_last4 = None, None
    s.flush()
    audit.record(s, actor=actor, action="provider.key_delete", entity_type=ENTITY, entity_id=provider,
                 before={"stored_key": f"ends with …{last4}"}, after={"stored_key": "none"},
                 summary=f"Deleted the {provider} key (it ended with …{last4}){why}", reversible=False)
    return last4


def _key_follows_endpoint(s: Session, actor: Actor, pc: ProviderConfig, provider: str, before: dict[str, Any],
                          after: dict[str, Any]) -> str:
    """Remove the stored key when the endpoint or region changed; the notice saying so ('' when kept)."""
    moved = " and ".join(f for f in ("endpoint", "region") if before[f] != after[f])
    if not moved or pc.encrypted_secret is None:
        return ""
    last4 = _remove_key(s, actor, pc, provider, why=f": the {moved} changed")
    return (f"The stored key (…{last4}) was removed because the {moved} changed: a key is sent only where it "
            "was saved for. Paste it again to use it there.")


def save_provider(actor: Actor, *, provider: str, enabled: bool, rate_limit_per_minute: int,
                  timeout_seconds: float, max_concurrency: int | None, endpoint: str | None, region: str | None,
                  expected_version: int, settings: Settings | None = None) -> ProviderRow:
    """Save a provider's non-secret settings if nobody changed them since `expected_version` (audited).

    The endpoint must be one the key may go to (`aiconsole.providers.endpoints`); changing the endpoint or
    region removes the stored key, which the returned row's `notice` says. `max_concurrency` None: no cap.
    """
    actor.require("providers.configure")
    capabilities(provider)  # NotFound for an unknown provider
    settings = settings or get_settings()
    checked = validate_settings(
        {"enabled": enabled, "rate_limit_per_minute": rate_limit_per_minute, "timeout_seconds": timeout_seconds,
         "max_concurrency": MAX_PARALLEL_CALLS if max_concurrency is None else max_concurrency,
         "endpoint": endpoint, "region": region},
        provider=provider, settings=settings)
    with org_session(actor.organization_id, engine=get_engine(settings)) as s:
        _check_endpoint(s, actor, provider, checked.endpoint, settings)
        pc = _row_for_update(s, actor, provider)
        if pc.version != expected_version:
            who = user_email(s, pc.updated_by) or "someone"
            when = f" at {pc.updated_at:%Y-%m-%d %H:%M} UTC" if pc.updated_at else ""
            raise ConflictError(f"The {provider} settings were changed by {who}{when} (version {pc.version}) after "
                                f"you opened them (version {expected_version}); nothing was saved.",
                                hint="Reload the page to see their change, then make yours again.")
        before = settings_state(pc)
        after = checked.model_dump()
        changed = {f: after[f] for f in FIELDS if before[f] != after[f]}
        notice = ""
        if changed:
            for name, value in changed.items():
                setattr(pc, name, value)
            _touch(pc, actor)
            s.flush()
            audit.record(s, actor=actor, action="provider.update", entity_type=ENTITY, entity_id=provider,
                         before={f: before[f] for f in changed}, after=changed,
                         summary=f"Changed {provider} settings: " + ", ".join(
                             f"{_LABELS[f].lower()} {before[f]} → {changed[f]}" for f in changed),
                         reversible=True)
            notice = _key_follows_endpoint(s, actor, pc, provider, before, after)
        elif pc in s.new:  # saving the defaults unchanged creates nothing
            s.expunge(pc)
            return _row(None, provider, None)
        return replace(_row(pc, provider, user_email(s, pc.updated_by)), notice=notice)


def set_secret(actor: Actor, *, provider: str, secret: str, settings: Settings | None = None) -> ProviderRow:
    """Check the key's format, store it encrypted (only its last 4 in clear) and audit that it was replaced."""
    actor.require("providers.configure")
    capabilities(provider)  # NotFound for an unknown provider
    checked = check_secret(provider, secret)
    token = secrets_box.encrypt(secret, settings=settings)
    with org_session(actor.organization_id, engine=get_engine(settings)) as s:
        pc = _row_for_update(s, actor, provider)
        had = pc.encrypted_secret is not None
        before = {"stored_key": f"ends with …{pc.secret_last4}" if had else "none"}
        pc.encrypted_secret, pc.secret_last4 = token, checked.last4
        _touch(pc, actor)
        s.flush()
        kind = "service-account key" if checked.kind == "service_account" else "API key"
        audit.record(s, actor=actor, action="provider.key_replace" if had else "provider.key_set",
                     entity_type=ENTITY, entity_id=provider, before=before,
                     after={"stored_key": f"{kind}, ends with …{checked.last4}"},
                     summary=f"{'Replaced' if had else 'Set'} the {provider} key ({kind}); it ends with "
                             f"…{checked.last4}", reversible=False)
        return _row(pc, provider, actor.email)


def delete_secret(actor: Actor, *, provider: str, settings: Settings | None = None) -> ProviderRow:
    """Remove the stored key (the worker then uses its environment's credentials); audited."""
    actor.require("providers.configure")
    capabilities(provider)  # NotFound for an unknown provider
    with org_session(actor.organization_id, engine=get_engine(settings)) as s:
        pc = load_config(s, actor.organization_id, provider, lock=True)
        if pc is None or pc.encrypted_secret is None:
            raise NotFound(f"There is no stored {provider} key to delete.", hint="Reload the page.")
        _touch(pc, actor)
        _remove_key(s, actor, pc, provider)
        return _row(pc, provider, actor.email)


def revert_audit(session: Session, *, actor: Actor, entry: AuditRow) -> int:
    """Restore entry.before of a provider settings change in the caller's transaction; the new entry's id."""
    actor.require("providers.configure")
    provider = entry.entity_id or ""
    capabilities(provider)  # NotFound for an unknown provider
    fields = [f for f in FIELDS if f in (entry.after or {}) and f in (entry.before or {})]
    if entry.entity_type != ENTITY or not fields:
        raise ValidationFailed(f"Audit entry #{entry.id} changed no revertible {provider} setting (a key change "
                               "cannot be undone: the old key is not kept).",
                               hint="Enter the key again on the Providers page.")
    pc = load_config(session, actor.organization_id, provider, lock=True)
    current = settings_state(pc)
    after, before = entry.after or {}, entry.before or {}
    if pc is None or any(current[f] != after[f] for f in fields):
        raise ConflictError(f"The {provider} settings changed again since audit entry #{entry.id}; nothing was "
                            "reverted.", hint="Revert the later change first.")
    restored = {**current, **{f: before[f] for f in fields}}
    _check_endpoint(session, actor, provider, restored["endpoint"], get_settings())
    for f in fields:
        setattr(pc, f, before[f])
    _touch(pc, actor)
    session.flush()
    entry_id = audit.record(session, actor=actor, action="revert", entity_type=ENTITY, entity_id=provider,
                            before={f: after[f] for f in fields}, after={f: before[f] for f in fields},
                            summary=f"Reverted {provider} settings of audit entry #{entry.id}: " + ", ".join(
                                f"{_LABELS[f].lower()} {after[f]} → {before[f]}" for f in fields),
                            reversible=True)
    _key_follows_endpoint(session, actor, pc, provider, current, restored)
    return entry_id
