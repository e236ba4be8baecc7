"""Provider settings and keys: format checks, encryption at rest, audit without secrets, conflicts, roles, revert."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from aiconsole.admin import users
from aiconsole.control import provider_admin, provider_connection
from aiconsole.pipeline.context import load_org_context
from aiconsole.platform import audit
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import get_engine, org_session, service_session
from aiconsole.platform.db.models import ROLES, AuditLog, ProviderConfig
from aiconsole.platform.errors import ConflictError, NotFound, PermissionDenied, ProviderError, ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.providers.keys import check_secret, reflected, scrub

KEY = "AIzaSyD-unit_test_key_0123456789abcdWXYZ"[:39]
OTHER_KEY = "AIzaSyOther-key_for_replacing_012345qrst"[:39]
PEM = ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7unitTestOnly\n"
       "-----END PRIVATE KEY-----\n")
SERVICE_ACCOUNT = json.dumps({"type": "service_account", "project_id": "p", "private_key_id": "0123456789abcdef",
                              "private_key": PEM, "client_email": "tagger@p.iam.gserviceaccount.com"}, indent=2)


def _actor(row: users.UserRow) -> Actor:
    return Actor(user_id=row.id, email=row.email, role=row.role, organization_id=row.organization_id)


@pytest.fixture
def world(any_settings: Settings) -> dict[str, Actor]:
    """Org A with one user per role, org B with an admin ('b_admin'), on SQLite and on PostgreSQL."""
    return _world(any_settings)


@pytest.fixture
def lite(settings: Settings) -> dict[str, Actor]:
    """The same world on SQLite only (for what does not depend on the database)."""
    return _world(settings)


def _world(any_settings: Settings) -> dict[str, Actor]:
    # single sign-on users: no password hashing to wait for
    a = users.create_organization(name="Org A", settings=any_settings)
    b = users.create_organization(name="Org B", settings=any_settings)

    def user(org: int, email: str, role: str) -> Actor:
        return _actor(users.create_user(Actor.system("test", org), email=email, display_name=role, role=role,
                                        password=None, settings=any_settings))

    out = {role: user(a.id, f"{role}@a.example.com", role) for role in ROLES}
    out["admin2"] = user(a.id, "second@a.example.com", "admin")
    out["b_admin"] = user(b.id, "admin@b.example.com", "admin")
    return out


def _all_audit_text() -> str:
    with service_session() as s:
        return json.dumps([[e.action, e.before, e.after, e.summary, e.actor] for e in s.scalars(select(AuditLog))],
                          ensure_ascii=False)


@pytest.mark.parametrize(("provider", "secret", "message"), [
    ("gemini", " " + KEY, "has a space at its start"),
    ("gemini", KEY + "\n", "has a newline at its end"),
    ("google-vision", KEY[:20] + "\n" + KEY[20:], "contains a newline at character 21"),
    ("gemini", KEY[:10] + " " + KEY[10:], "contains a space at character 11"),
    ("gemini", "AIzb" + KEY[4:], "start with 'AIza'"),
    ("gemini", "sk-" + KEY[3:], "start with 'AIza'"),
    ("gemini", KEY[:-1], "is 38 characters long; Google API keys are 39"),
    ("google-vision", KEY + "x", "is 40 characters long"),
    ("gemini", KEY[:-1] + "!", "position 39 that API keys never contain"),
    ("gemini", "", "is empty"),
    ("gemini", "   ", "is empty"),
    ("gemini", SERVICE_ACCOUNT, "Gemini takes an API key, not a service-account JSON"),
    ("google-vision", '{"type": "service_account", ', "not valid JSON"),
    ("google-vision", "[1,2]", "start with 'AIza'"),
    ("google-vision", '{"type": "service_account"}', "lacks private_key, client_email"),
    ("google-vision", SERVICE_ACCOUNT.replace('"service_account"', '"authorized_user"'), "not a service-account key"),
    ("google-vision", SERVICE_ACCOUNT.replace("PRIVATE KEY", "PUBLIC THING"), "not a PEM private key"),
    ("google-vision", SERVICE_ACCOUNT.replace("tagger@p", "tagger-p"), "not an email address"),
    ("google-vision", "{" + " " * 20_000 + "}", "more than the 20,000"),
    ("local", KEY, "takes no key"),
])
def test_key_formats_are_refused_with_the_reason_and_never_echoed(provider: str, secret: str, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message) as err:
        check_secret(provider, secret)
    text = str(err.value)
    assert KEY not in text and KEY[4:] not in text and PEM not in text
    assert err.value.__cause__ is None


def test_good_keys_pass_with_their_last_four() -> None:
    assert check_secret("gemini", KEY) == check_secret("google-vision", KEY)
    assert check_secret("gemini", KEY).kind == "api_key" and check_secret("gemini", KEY).last4 == KEY[-4:]
    # A key file's whitespace is JSON syntax, kept as given; its key id's tail is what is shown.
    sa = check_secret("google-vision", "\n" + SERVICE_ACCOUNT + "\n")
    assert (sa.kind, sa.last4) == ("service_account", "cdef")


def test_scrub_removes_the_key_and_the_private_key_lines() -> None:
    assert scrub(f"HTTP 400 for key={KEY}.", KEY) == "HTTP 400 for key=••••."
    line = PEM.splitlines()[1]
    assert line not in scrub(f"bad PEM line {line}", SERVICE_ACCOUNT)
    assert scrub("nothing to hide", None) == "nothing to hide"


def test_the_key_is_encrypted_at_rest_masked_everywhere_and_audited_without_it(
        world: dict[str, Actor], any_settings: Settings) -> None:
    admin = world["admin"]
    row = provider_admin.set_secret(admin, provider="gemini", secret=KEY, settings=any_settings)
    assert (row.has_secret, row.secret_masked, row.version) == (True, "••••" + KEY[-4:], 1)
    with service_session() as s:
        pc = s.scalar(select(ProviderConfig).where(ProviderConfig.provider == "gemini",
                                                   ProviderConfig.organization_id == admin.organization_id))
        assert pc is not None and pc.encrypted_secret and KEY not in pc.encrypted_secret
        assert pc.secret_last4 == KEY[-4:]
    listed = {r.provider: r for r in provider_admin.list_providers(world["viewer"], settings=any_settings)}
    assert listed["gemini"].secret_masked == "••••" + KEY[-4:] and KEY not in repr(listed)
    assert not listed["google-vision"].has_secret and listed["local"].version == 0

    provider_admin.set_secret(admin, provider="gemini", secret=OTHER_KEY, settings=any_settings)
    provider_admin.set_secret(admin, provider="google-vision", secret=SERVICE_ACCOUNT, settings=any_settings)
    gone = provider_admin.delete_secret(admin, provider="gemini", settings=any_settings)
    assert (gone.has_secret, gone.secret_masked) == (False, "")
    with pytest.raises(NotFound, match="no stored gemini key"):
        provider_admin.delete_secret(admin, provider="gemini", settings=any_settings)

    text = _all_audit_text()
    for secret in (KEY, OTHER_KEY, PEM, KEY[4:20], OTHER_KEY[4:20], PEM.splitlines()[1]):
        assert secret not in text
    entries = [e for e in audit.list_entries(admin, entity_type="provider_config", settings=any_settings)]
    assert [e.action for e in entries] == ["provider.key_delete", "provider.key_set", "provider.key_replace",
                                          "provider.key_set"]
    assert not any(e.reversible for e in entries)
    assert entries[2].summary == f"Replaced the gemini key (API key); it ends with …{OTHER_KEY[-4:]}"
    assert entries[1].after == {"stored_key": "service-account key, ends with …cdef"}


def test_a_refused_key_saves_nothing(lite: dict[str, Actor], settings: Settings) -> None:
    with pytest.raises(ValidationFailed, match="newline at its end"):
        provider_admin.set_secret(lite["admin"], provider="gemini", secret=KEY + "\n", settings=settings)
    with service_session() as s:
        assert s.scalar(select(ProviderConfig).where(ProviderConfig.provider == "gemini")) is None
        assert s.scalar(select(AuditLog).where(AuditLog.entity_type == "provider_config")) is None


def _allowing(settings: Settings, hosts: str) -> Settings:
    """`settings` with an admin's AICONSOLE_PROVIDER_HOST_ALLOWLIST."""
    return settings.model_copy(update={"provider_host_allowlist": hosts})


def _save(actor: Actor, settings: Settings, version: int, **changes: object) -> provider_admin.ProviderRow:
    values: dict[str, object] = {**provider_admin.DEFAULTS, **changes}
    return provider_admin.save_provider(actor, provider="gemini", expected_version=version, settings=settings,
                                        **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("changes", "message"), [
    ({"rate_limit_per_minute": 0}, "Rate limit requests per minute .* 1 to 100,000 .* untick Enabled"),
    ({"rate_limit_per_minute": 100_001}, "1 to 100,000"),
    ({"timeout_seconds": 0.5}, "Timeout seconds to wait for one answer, 1 to 300 .*lease"),
    ({"timeout_seconds": 200.0}, r"Timeout 200 s is not shorter than the photo lease \(120 s\)"),
    ({"max_concurrency": 0}, "Parallel calls cap the most of the organization's parallel calls per worker this "
                             "provider gets at once, 1 to 64"),
    ({"max_concurrency": 65}, r"1 to 64 \(empty: no cap\)"),
    ({"endpoint": "ftp://example.com"}, "Endpoint must be an http:// or https:// URL"),
    ({"endpoint": "https://"}, "with a host"),
    ({"endpoint": "https://user:pw@example.com"}, "must not contain a user name or password"),
    ({"endpoint": "https://exa mple.com"}, "must not contain spaces"),
    ({"endpoint": "https://e.com/" + "a" * 600}, "longer than 512"),
    ({"region": "US Central"}, "lower-case letters, digits and '-'"),
    ({"rate_limit_per_minute": 0, "max_concurrency": 999}, "Rate limit .*; Parallel calls cap"),
])
def test_settings_out_of_range_are_refused_with_range_and_reason(changes: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"enabled": True, "rate_limit_per_minute": 600, "timeout_seconds": 30.0,
                                 "max_concurrency": 8, "endpoint": None, "region": None, **changes}
    with pytest.raises(ValidationFailed, match=message) as err:
        provider_admin.validate_settings(values, provider="gemini", settings=Settings())
    assert str(err.value).startswith("gemini: ") and "Nothing was saved" in str(err.value)


def test_local_has_no_endpoint_and_a_refused_save_changes_nothing(lite: dict[str, Actor],
                                                                   settings: Settings) -> None:
    with pytest.raises(ValidationFailed, match="Rate limit"):
        _save(lite["admin"], settings, 0, rate_limit_per_minute=0)
    assert provider_admin.get_provider(lite["admin"], provider="gemini", settings=settings).version == 0
    with pytest.raises(ValidationFailed, match="local runs inside the worker"):
        provider_admin.save_provider(lite["admin"], provider="local", enabled=True, rate_limit_per_minute=60,
                                     timeout_seconds=5, max_concurrency=2, endpoint="http://x.example",
                                     region=None, expected_version=0, settings=settings)
    with pytest.raises(NotFound, match="no provider 'openai'"):
        provider_admin.get_provider(lite["admin"], provider="openai", settings=settings)


def test_save_is_audited_and_a_stale_version_is_a_conflict_naming_who(
        world: dict[str, Actor], any_settings: Settings) -> None:
    admin, other = world["admin"], world["admin2"]
    unchanged = _save(admin, any_settings, 0)
    assert unchanged.version == 0  # saving the defaults as they are creates nothing
    row = _save(admin, _allowing(any_settings, "http://127.0.0.1"), 0, rate_limit_per_minute=120,
                endpoint="http://127.0.0.1:9/", region="eu")
    assert (row.version, row.rate_limit_per_minute, row.endpoint, row.region, row.updated_by) == (
        1, 120, "http://127.0.0.1:9/", "eu", admin.email)
    [entry] = audit.list_entries(admin, entity_type="provider_config", settings=any_settings)
    assert entry.reversible and entry.entity_id == "gemini" and entry.action == "provider.update"
    assert entry.before == {"rate_limit_per_minute": 600, "endpoint": None, "region": None}
    assert entry.after == {"rate_limit_per_minute": 120, "endpoint": "http://127.0.0.1:9/", "region": "eu"}

    _save(other, any_settings, 1, rate_limit_per_minute=60)
    with pytest.raises(ConflictError, match=r"changed by second@a\.example\.com .*\(version 2\) after you opened "
                                            r"them \(version 1\)") as err:
        _save(admin, any_settings, 1, rate_limit_per_minute=90)
    assert "Reload the page" in str(err.value)
    assert provider_admin.get_provider(admin, provider="gemini", settings=any_settings).rate_limit_per_minute == 60
    # a key change is a change too: a form opened before it is stale
    provider_admin.set_secret(other, provider="gemini", secret=KEY, settings=any_settings)
    with pytest.raises(ConflictError):
        _save(admin, any_settings, 2, enabled=False)


def test_only_admins_change_providers_but_everyone_reads(lite: dict[str, Actor], settings: Settings) -> None:
    for role in ROLES:
        actor = lite[role]
        assert len(provider_admin.list_providers(actor, settings=settings)) == 3, role
        version = provider_admin.get_provider(actor, provider="gemini", settings=settings).version
        actions = [lambda: _save(actor, settings, version, rate_limit_per_minute=61 + version),
                   lambda: provider_admin.set_secret(actor, provider="gemini", secret=KEY, settings=settings),
                   lambda: provider_connection.test_connection(actor, provider="local", settings=settings),
                   lambda: provider_admin.delete_secret(actor, provider="gemini", settings=settings)]
        if role in ("admin", "platform_admin"):
            for act in actions:
                act()
        else:
            for act in actions:
                with pytest.raises(PermissionDenied, match=r"providers\.configure"):
                    act()


def test_organizations_do_not_see_each_others_keys(world: dict[str, Actor], any_settings: Settings) -> None:
    provider_admin.set_secret(world["admin"], provider="gemini", secret=KEY, settings=any_settings)
    theirs = provider_admin.get_provider(world["b_admin"], provider="gemini", settings=any_settings)
    assert (theirs.has_secret, theirs.version) == (False, 0)
    with pytest.raises(NotFound):
        provider_admin.delete_secret(world["b_admin"], provider="gemini", settings=any_settings)
    assert provider_admin.get_provider(world["admin"], provider="gemini", settings=any_settings).has_secret


def _revert(actor: Actor, entry: audit.AuditRow, settings: Settings) -> int:
    with org_session(actor.organization_id, engine=get_engine(settings)) as s:
        return provider_admin.revert_audit(s, actor=actor, entry=entry)


def test_revert_restores_the_fields_of_an_entry_unless_changed_again(world: dict[str, Actor],
                                                                      any_settings: Settings) -> None:
    admin = world["admin"]
    _save(admin, any_settings, 0, rate_limit_per_minute=100, timeout_seconds=12.5)
    _save(admin, any_settings, 1, rate_limit_per_minute=200, timeout_seconds=12.5, region="eu")
    first, second = sorted(audit.list_entries(admin, entity_type="provider_config", settings=any_settings),
                           key=lambda e: e.id)
    with pytest.raises(ConflictError, match="changed again since"):
        _revert(admin, first, any_settings)  # its rate limit was changed again by the second entry
    with pytest.raises(PermissionDenied):
        _revert(world["developer"], second, any_settings)
    new_id = _revert(admin, second, any_settings)
    row = provider_admin.get_provider(admin, provider="gemini", settings=any_settings)
    assert (row.region, row.rate_limit_per_minute, row.timeout_seconds, row.version) == (None, 100, 12.5, 3)
    new = next(e for e in audit.list_entries(admin, settings=any_settings) if e.id == new_id)
    assert (new.action, new.reversible, new.before, new.after) == (
        "revert", True, {"rate_limit_per_minute": 200, "region": "eu"}, {"rate_limit_per_minute": 100, "region": None})
    _revert(admin, first, any_settings)
    row = provider_admin.get_provider(admin, provider="gemini", settings=any_settings)
    assert (row.rate_limit_per_minute, row.timeout_seconds) == (600, 30.0)

    provider_admin.set_secret(admin, provider="gemini", secret=KEY, settings=any_settings)
    key_entry = audit.list_entries(admin, entity_type="provider_config", settings=any_settings)[0]
    with pytest.raises(ValidationFailed, match="cannot be undone"):
        _revert(admin, key_entry, any_settings)


def test_the_worker_context_decrypts_the_key_or_fails_that_provider_clearly(
        lite: dict[str, Actor], settings: Settings) -> None:
    admin = lite["admin"]
    provider_admin.set_secret(admin, provider="gemini", secret=KEY, settings=settings)
    with service_session() as s:
        ctx = load_org_context(s, organization_id=admin.organization_id)
    setup = ctx.setup("gemini")
    assert setup.api_key == KEY and setup.settings().api_key == KEY and KEY not in repr(setup)
    assert ctx.setup("google-vision").settings().api_key is None

    rotated = Settings(data_dir=settings.data_dir, secret_key="r" * 40)  # type: ignore[arg-type]
    with service_session() as s:
        ctx = load_org_context(s, organization_id=admin.organization_id, settings=rotated)
    broken = ctx.setup("gemini")
    with pytest.raises(ProviderError, match="gemini: A stored provider secret cannot be decrypted") as err:
        broken.settings()
    assert err.value.kind == "auth" and not err.value.retryable and KEY not in str(err.value)


def test_the_audit_log_reverts_a_settings_change_but_not_a_key_change(lite: dict[str, Actor],
                                                                       settings: Settings) -> None:
    from aiconsole.admin import reverts

    admin = lite["admin"]
    _save(admin, _allowing(settings, "eu-vision.example.com"), 0, enabled=False,
          endpoint="https://eu-vision.example.com")
    provider_admin.set_secret(admin, provider="gemini", secret=KEY, settings=settings)
    key_entry, change = audit.list_entries(admin, entity_type="provider_config", settings=settings)
    with pytest.raises(ValidationFailed):
        reverts.revert(admin, audit_id=key_entry.id, settings=settings)
    reverts.revert(admin, audit_id=change.id, settings=settings)
    row = provider_admin.get_provider(admin, provider="gemini", settings=settings)
    # The key was saved for the reverted endpoint, so it goes too: a key is sent only where it was saved for.
    assert (row.enabled, row.endpoint, row.has_secret) == (True, None, False)
    removed = audit.list_entries(admin, entity_type="provider_config", settings=settings)[0]
    assert (removed.action, removed.summary) == (
        "provider.key_delete", f"Deleted the gemini key (it ended with …{KEY[-4:]}): the endpoint changed")


# ---------------------------------------------------- the stored key goes only where it was saved for (item 9)

@pytest.mark.parametrize(("endpoint", "words"), [
    ("http://generativelanguage.googleapis.com", "generativelanguage.googleapis.com is reached over https only"),
    ("https://evil.example", "evil.example is neither generativelanguage.googleapis.com nor in "
                             "AICONSOLE_PROVIDER_HOST_ALLOWLIST (now: empty)"),
    ("https://generativelanguage.googleapis.com.evil.example", "is neither"),
    ("https://evil.example/generativelanguage.googleapis.com", "evil.example is neither"),
    ("https://vision.googleapis.com", "is neither generativelanguage"),  # another provider's host
    ("http://127.0.0.1:9", "127.0.0.1 is neither"),
])
def test_an_endpoint_off_the_providers_host_is_refused_and_nothing_saved(
        lite: dict[str, Actor], settings: Settings, endpoint: str, words: str) -> None:
    admin = lite["admin"]
    provider_admin.set_secret(admin, provider="gemini", secret=KEY, settings=settings)
    with pytest.raises(ValidationFailed, match=re.escape(words)) as err:
        _save(admin, settings, 1, endpoint=endpoint)
    assert "Nothing was saved" in err.value.message and "AICONSOLE_PROVIDER_HOST_ALLOWLIST" in str(err.value.hint)
    row = provider_admin.get_provider(admin, provider="gemini", settings=settings)
    assert (row.version, row.endpoint, row.has_secret) == (1, None, True)


def test_the_providers_host_and_allow_listed_hosts_are_accepted(lite: dict[str, Actor], settings: Settings) -> None:
    admin = lite["admin"]
    assert _save(admin, settings, 0, endpoint="https://generativelanguage.googleapis.com/v1beta").version == 1
    allowing = _allowing(settings, "proxy.corp.example, http://127.0.0.1")
    assert _save(admin, allowing, 1, endpoint="https://proxy.corp.example:8443/gemini").version == 2
    assert _save(admin, allowing, 2, endpoint="http://127.0.0.1:8787").version == 3  # listed as http://
    with pytest.raises(ValidationFailed, match=r"proxy\.corp\.example is allow-listed for https only"):
        _save(admin, allowing, 3, endpoint="http://proxy.corp.example")
    # The same endpoint is refused once the admin takes the host off the list.
    with pytest.raises(ValidationFailed, match=r"127\.0\.0\.1 is neither"):
        _save(admin, settings, 3, endpoint="http://127.0.0.1:8787", rate_limit_per_minute=60)


def test_the_demo_emulator_is_the_exception_for_demo_organizations_only(settings: Settings) -> None:
    emulator = settings.model_copy(update={"demo_emulator_url": "http://127.0.0.1:8787"})
    demo = users.create_organization(name="Demo", is_demo=True, settings=settings)
    real = users.create_organization(name="Real", settings=settings)
    for org, allowed in ((demo, True), (real, False)):
        admin = Actor(user_id=None, email=f"admin@{org.slug}.example", role="admin", organization_id=org.id)
        if allowed:
            assert _save(admin, emulator, 0, endpoint="http://127.0.0.1:8787").endpoint == "http://127.0.0.1:8787"
        else:
            with pytest.raises(ValidationFailed, match=r"127\.0\.0\.1 is neither"):
                _save(admin, emulator, 0, endpoint="http://127.0.0.1:8787")
        with pytest.raises(ValidationFailed, match="is neither"):  # another port is not the emulator
            _save(admin, emulator, 1 if allowed else 0, endpoint="http://127.0.0.1:8788")


def test_changing_the_endpoint_or_region_removes_the_stored_key(world: dict[str, Actor],
                                                                 any_settings: Settings) -> None:
    admin = world["admin"]
    allowing = _allowing(any_settings, "eu.example, us.example")
    provider_admin.set_secret(admin, provider="gemini", secret=KEY, settings=any_settings)
    kept = _save(admin, allowing, 1, rate_limit_per_minute=60)  # other fields: the key stays
    assert kept.has_secret and kept.notice == ""
    moved = _save(admin, allowing, 2, rate_limit_per_minute=60, endpoint="https://eu.example")
    assert (moved.has_secret, moved.secret_masked, moved.endpoint) == (False, "", "https://eu.example")
    assert moved.notice == (f"The stored key (…{KEY[-4:]}) was removed because the endpoint changed: a key is sent "
                            "only where it was saved for. Paste it again to use it there.")
    entries = audit.list_entries(admin, entity_type="provider_config", settings=any_settings)
    assert [(e.action, e.reversible) for e in entries[:2]] == [("provider.key_delete", False),
                                                               ("provider.update", True)]
    assert entries[0].summary == f"Deleted the gemini key (it ended with …{KEY[-4:]}): the endpoint changed"
    # A key pasted for the new endpoint stays with it; a region change removes it again.
    provider_admin.set_secret(admin, provider="gemini", secret=OTHER_KEY, settings=any_settings)
    assert _save(admin, allowing, 4, rate_limit_per_minute=60, endpoint="https://eu.example").has_secret
    both = _save(admin, allowing, 4, rate_limit_per_minute=60, endpoint="https://us.example", region="us")
    assert not both.has_secret and "because the endpoint and region changed" in both.notice
    assert not _save(admin, allowing, 5, rate_limit_per_minute=60, endpoint="https://us.example").notice
    with service_session() as s:
        pc = s.scalar(select(ProviderConfig).where(ProviderConfig.provider == "gemini",
                                                   ProviderConfig.organization_id == admin.organization_id))
        assert pc is not None and pc.encrypted_secret is None and pc.secret_last4 is None


@pytest.mark.parametrize("entry", ["*.example.com", "https://x.example/path", "x.example:443", "user@x.example",
                                   "ftp://x.example", "x..example"])
def test_the_allow_list_setting_takes_host_names_only(entry: str) -> None:
    with pytest.raises(ValueError, match="is not a host name"):
        Settings(provider_host_allowlist=f"ok.example, {entry}")
    assert Settings(provider_host_allowlist=" a.example ,HTTP://127.0.0.1,").provider_host_allowlist


def test_reflected_provider_text_is_scrubbed_then_cut_short() -> None:
    body = f"HTTP 400: {KEY} " + "<html>" + "x" * 5000
    shown = reflected(body, KEY)
    assert len(shown) == 200 and shown.endswith("…") and KEY not in shown and "••••" in shown
    # Scrubbing comes first: a key that straddles the cut leaves no prefix behind.
    assert KEY[:20] not in reflected("y" * 180 + KEY, KEY)
    assert reflected("a\n  b\t c", None) == "a b c"


def test_test_connection_sends_nothing_to_an_endpoint_that_is_not_allowed(lite: dict[str, Actor],
                                                                         settings: Settings) -> None:
    admin = lite["admin"]
    provider_admin.set_secret(admin, provider="gemini", secret=KEY, settings=settings)
    with service_session() as s:  # saved before the endpoint rules existed
        pc = s.scalar(select(ProviderConfig).where(ProviderConfig.provider == "gemini",
                                                   ProviderConfig.organization_id == admin.organization_id))
        assert pc is not None
        pc.endpoint = "https://collector.evil.example"
    result = provider_connection.test_connection(admin, provider="gemini", settings=settings)
    assert (result.ok, result.error_kind, result.verdict, result.latency_ms) == (
        False, "endpoint", "endpoint not allowed", 0)
    assert result.error is not None and result.error.startswith(
        "Not called: the gemini endpoint https://collector.evil.example is not allowed")
    assert KEY not in result.error
