"""Control: each provider's limits and endpoint, its key (only ever shown masked), and "Test connection"."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from aiconsole.control import provider_admin, provider_connection
from aiconsole.control.parallel_calls import CAP, SETTING, ParallelCalls, parallel_calls
from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError
from aiconsole.platform.permissions import allowed
from aiconsole.providers.registry import capabilities
from aiconsole.ui.widgets import code, confirmed_action, flash, inert, md, say

KEY_HELP = {
    "gemini": "A Gemini API key from Google AI Studio: 39 characters starting with AIza.",
    "google-vision": "An API key (AIza…, 39 characters) or the whole service-account JSON key file.",
}


def render(actor: Actor) -> None:
    """One expander per provider: its settings (a form for providers.configure), key and connection test."""
    can_configure = allowed(actor.role, "providers.configure")
    st.caption("Changes reach every worker within seconds. Keys are stored encrypted and shown only by their last "
               "4 characters." + ("" if can_configure else " Only admins can change these settings."))
    emulated = provider_admin.emulated_providers(actor)
    if emulated:
        say("info", "Demo organization: {} calls go to the local emulator at {}, not to Google. Answers are "
            "synthetic and nothing is billed; the costs shown are what Google would charge. Enable a provider "
            "below and make it active on Pipeline to watch it run.", " and ".join(emulated),
            code(next(iter(emulated.values()))), icon=":material/dns:")
    parallel = parallel_calls(actor)
    for row in provider_admin.list_providers(actor):
        status = "enabled" if row.enabled else "disabled"
        with st.expander(f"**{row.provider}** — {status}", expanded=can_configure):
            if row.version:
                say("caption", "Version {}, last changed by {} at {} UTC.", row.version,
                    row.updated_by or "a system process", f"{row.updated_at:%Y-%m-%d %H:%M}")
            else:
                st.caption("Never changed here: the defaults apply.")
            if not can_configure:
                _settings_table(row, emulated, parallel)
                continue
            _settings_form(actor, row, emulated, parallel)
            if not capabilities(row.provider).needs_key:
                st.caption("The local analyzer runs inside the worker: it needs no key or endpoint.")
            else:
                st.divider()
                _key_section(actor, row)
            st.divider()
            _test_section(actor, row)


def _settings_table(row: provider_admin.ProviderRow, emulated: dict[str, str], parallel: ParallelCalls) -> None:
    key = "stored" if row.has_secret else "none"
    frame = pd.DataFrame([
        {"setting": "enabled", "value": "yes" if row.enabled else "no"},
        {"setting": "rate limit (requests/min)", "value": f"{row.rate_limit_per_minute:,}"},
        {"setting": "timeout (s)", "value": f"{row.timeout_seconds:g}"},
        {"setting": CAP.lower(), "value": parallel.cap_text(row.provider)},
        {"setting": "endpoint", "value": f"emulator at {emulated[row.provider]} (demo)"
         if row.provider in emulated else row.endpoint or "default"},
        {"setting": "region", "value": row.region or "default"},
        {"setting": "key", "value": key if capabilities(row.provider).needs_key else "not needed"},
    ])
    st.dataframe(frame, hide_index=True, width="stretch")


def _settings_form(actor: Actor, row: provider_admin.ProviderRow, emulated: dict[str, str],
                   parallel: ParallelCalls) -> None:
    p = row.provider
    with st.form(f"settings_{p}", border=False):
        enabled = st.checkbox("Enabled", value=row.enabled, key=f"enabled_{p}",
                              help="A disabled provider gets no calls; photos go to the fallback or wait.")
        c1, c2, c3 = st.columns(3)
        rate = c1.number_input("Rate limit (requests/min)", value=row.rate_limit_per_minute, step=10,
                               key=f"rate_{p}", help="Shared by all workers; 1 to 100,000.")
        timeout = c2.number_input("Timeout (s)", value=float(row.timeout_seconds), step=1.0, key=f"timeout_{p}",
                                  help="1 to 300 s, and shorter than the photo lease.")
        # Started empty (value=None) so that a cap can be cleared; seeded with the saved cap for each version.
        if st.session_state.get(f"_conc_version_{p}") != row.version:
            st.session_state[f"conc_{p}"], st.session_state[f"_conc_version_{p}"] = parallel.caps.get(p), row.version
        concurrency = c3.number_input(CAP, value=None, step=1, key=f"conc_{p}",
                                      placeholder=f"no cap ({parallel.setting} per worker)",
                                      help=md("At most this many of the organization's {} ({}, set on the "
                                              "Pipeline page) go to {} at once; empty: no cap. Now: {}.",
                                              SETTING.lower(), parallel.setting, p, parallel.cap_text(p)))
        endpoint, region = row.endpoint, row.region
        if capabilities(p).has_endpoint:
            c4, c5 = st.columns([3, 1])
            endpoint = c4.text_input("Endpoint", value=row.endpoint or "", key=f"endpoint_{p}",
                                     placeholder="default (Google's public endpoint)",
                                     help="An https URL on the provider's own host or one allow-listed in "
                                          "AICONSOLE_PROVIDER_HOST_ALLOWLIST. Changing it removes the stored key.")
            region = c5.text_input("Region", value=row.region or "", key=f"region_{p}", placeholder="default")
            if p in emulated:
                say("caption", "While the emulator runs, this demo organization's {} calls go to {} whatever is "
                    "saved here.", p, code(emulated[p]), where=c4)
        if st.form_submit_button("Save settings", type="primary"):
            try:
                saved = provider_admin.save_provider(actor, provider=p, enabled=enabled,
                                                     rate_limit_per_minute=int(rate),
                                                     timeout_seconds=float(timeout),
                                                     max_concurrency=None if concurrency is None
                                                     else int(concurrency), endpoint=endpoint,
                                                     region=region, expected_version=row.version)
                flash("success", "Saved the {} settings.{}", p, f" {saved.notice}" if saved.notice else "")
                st.rerun()
            except AiconsoleError as exc:
                say("error", "{}", exc)


def _delete_key(actor: Actor, p: str) -> str:
    provider_admin.delete_secret(actor, provider=p)
    return f"Deleted the {p} key. Workers now use {capabilities(p).env_credentials}, if they have it."


def _save_key(actor: Actor, p: str) -> None:
    # A callback, so the typed key can be wiped from the widget before the page renders again, saved or not.
    secret = st.session_state.get(f"secret_{p}", "")
    st.session_state[f"secret_{p}"] = ""
    try:
        saved = provider_admin.set_secret(actor, provider=p, secret=secret)
        flash("success", "Saved the {} key ({}). Use Test connection to try it.", p, saved.secret_masked)
    except AiconsoleError as exc:
        st.session_state[f"_key_error_{p}"] = str(exc)


def _key_section(actor: Actor, row: provider_admin.ProviderRow) -> None:
    p = row.provider
    st.markdown("**Key**")
    if row.has_secret:
        say("markdown", "Stored key: {}", code(row.secret_masked))
    else:
        say("info", "No key stored: workers use {} if they have it. Paste a key below to store one.",
            capabilities(p).env_credentials)
    with st.form(f"key_form_{p}", border=False):
        st.text_input("Replace key" if row.has_secret else "Key", type="password", key=f"secret_{p}",
                      help=inert(KEY_HELP[p]), placeholder=KEY_HELP[p])
        st.form_submit_button("Save key", on_click=_save_key, args=(actor, p))
    error = st.session_state.pop(f"_key_error_{p}", None)
    if error:
        say("error", "{}", error)
    if row.has_secret:
        confirmed_action("Delete key", key=f"delete_key_{p}", icon=":material/delete:",
                         prompt=f"Delete the stored {p} key ({row.secret_masked})? This cannot be undone; "
                                f"workers fall back to {capabilities(p).env_credentials}.",
                         run=lambda: _delete_key(actor, p))


def _test_section(actor: Actor, row: provider_admin.ProviderRow) -> None:
    p = row.provider
    result_key = f"_connection_{p}"
    if st.button("Test connection", key=f"test_{p}", icon=":material/network_check:",
                 help="One real call with the saved settings and key on a small sample photo."):
        with st.spinner(f"Calling {p} with the saved settings…"):
            try:
                st.session_state[result_key] = provider_connection.test_connection(actor, provider=p)
            except AiconsoleError as exc:
                say("error", "{}", exc)
    result = st.session_state.get(result_key)
    if result is None:
        return
    if result.settings_version != row.version:
        # A result belongs to the settings it tested: after a save (settings or key) it no longer says anything.
        say("caption", "The last Test connection tried the previous settings (version {}); these are version {}. "
            "Test again to check them.", result.settings_version, row.version)
        return
    where = f"{result.model} at {result.endpoint}"
    if result.ok:
        tags = ", ".join(f"{label} ({conf:.0%})" for label, conf in result.tags) or "no tags"
        say("success", "Connected in {} ms ({}). Top tags: {}", f"{result.latency_ms:,}", where, tags)
    else:
        say("error", "{} after {} ms ({}): {}", result.verdict.capitalize(), f"{result.latency_ms:,}", where,
            result.error)
