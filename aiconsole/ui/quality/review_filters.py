"""The review queue's order picker (each order's note under it) and filters (label, provider, model, prompt
version, arrival days)."""

from __future__ import annotations

import streamlit as st

from aiconsole.platform.actor import Actor
from aiconsole.platform.errors import AiconsoleError
from aiconsole.quality import review_reads as reads
from aiconsole.quality.review_queue import DISAGREEMENT_ORDER_NOTE, QUEUE_ORDERS, RANDOM_ORDER_NOTE, QueueFilters
from aiconsole.ui.widgets import say

ORDER_NAMES = {"lowest_confidence": "Lowest confidence", "oldest": "Oldest", "random": "Random sample",
               "disagreement": "Disagreement"}
ORDER_NOTES = {"random": RANDOM_ORDER_NOTE, "disagreement": DISAGREEMENT_ORDER_NOTE}
ORDER_KEY = "rv_order"


def controls(actor: Actor) -> tuple[str, QueueFilters]:
    """The order and filters picked (the filters the domain built from them; none when they are refused)."""
    order_col, filter_col = st.columns([2, 3])
    with order_col:
        order = st.radio("Order", QUEUE_ORDERS, format_func=lambda o: ORDER_NAMES.get(o, o), key=ORDER_KEY,
                         horizontal=True)
        if order in ORDER_NOTES:
            say("caption", "{}", ORDER_NOTES[order])
    with filter_col.expander("Filters", icon=":material/filter_list:"):
        choices = reads.filter_choices(actor)
        providers = dict(choices.providers)
        versions = dict(choices.prompt_versions)
        a, b, c = st.columns(3)
        label = a.selectbox("Label", choices.labels, index=None, placeholder="any label", accept_new_options=True,
                            key="rv_f_label")
        provider = b.selectbox("Provider", list(providers), index=None, placeholder="any provider",
                               format_func=lambda p: providers.get(p, p), key="rv_f_provider")
        models = (choices.models.get(provider, ()) if provider else
                  tuple(dict.fromkeys(m for ms in choices.models.values() for m in ms)))
        model = c.selectbox("Model", models, index=None, placeholder="any model", accept_new_options=True,
                            key="rv_f_model")
        d, e, f = st.columns(3)
        version = d.selectbox("Prompt version", list(versions), index=None, placeholder="any version",
                              format_func=lambda v: versions.get(v, str(v)), key="rv_f_version")
        first = e.date_input("Arrived from", value=None, key="rv_f_from")
        last = f.date_input("Arrived until", value=None, key="rv_f_until")
    try:
        filters = reads.queue_filters(actor, label=label, provider=provider, model=model, prompt_version_id=version,
                                      first_day=first, last_day=last)
    except AiconsoleError as exc:
        say("warning", "{} The queue is shown without filters.", exc)
        filters = QueueFilters()
    return str(order), filters
