"""The Quality analytics panel through AppTest on the seeded demo plus a review history of the label
'calibration fixture' (40 random-sample decisions: a 0.90 accept threshold reaches 100%): an analyst sees the charts,
tables and calibration but cannot propose; a reviewer cannot either; an admin proposes, and the Pipeline rules
then show the override (audited). An organization without reviews gets empty states saying what to do."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from panel_apps import demo_actor, panel_app
from streamlit.testing.v1 import AppTest
from unit_helpers import load_unit_module

from aiconsole.admin import users
from aiconsole.control import pipeline_settings
from aiconsole.platform import audit
from aiconsole.platform.actor import Actor
from aiconsole.platform.db.types import utcnow
from aiconsole.ui.widgets import FLASH_KEY, shown

qah = load_unit_module("test_quality_analytics")
LABEL = "calibration fixture"  # a label the demo never gives
PROPOSE = "qa_propose_" + hashlib.sha256(LABEL.encode()).hexdigest()[:12]


PANEL = "aiconsole.ui.quality.analytics_panel"


def _texts(at: AppTest) -> str:
    return "\n".join(shown(str(e.value)) for kind in (at.markdown, at.caption, at.info, at.error, at.success)
                     for e in kind)


@pytest.fixture(scope="module")
def history(demo_env: dict[str, str], passwords: dict[str, str]) -> Actor:
    """The demo reviewer's random-order reviews of LABEL an hour ago: 30 right at 0.9, 5 of 10 at 0.7."""
    reviewer = demo_actor(demo_env, passwords, "reviewer")
    at = utcnow() - timedelta(hours=1)
    for conf, n, right in ((0.9, 30, 30), (0.7, 10, 5)):
        for i in range(n):
            qah.add_review(reviewer.organization_id, reviewer, order="random", at=at, created=at,
                           decisions=[(LABEL, conf, "accepted", "approve" if i < right else "reject", None)])
    return reviewer


def test_analyst_sees_the_charts_tables_and_calibration(history: Actor, demo_env: dict[str, str],
                                                        passwords: dict[str, str]) -> None:
    at = panel_app(PANEL, demo_actor(demo_env, passwords, "analyst"))
    assert len(at.get("plotly_chart")) == 5  # precision, confidence, renames, reviews per day, reliability
    metrics = {m.label: m.value for m in at.metric}
    assert set(metrics) == {"Precision, random sample", "Precision, all reviews", "Awaiting review",
                            "Reviews, last 24 h"}
    assert metrics["Precision, random sample"].endswith("%")
    assert [s.value for s in at.subheader] == ["Per label", "Review throughput", "Calibration"]
    labels = at.dataframe[0].value
    row = labels[labels["label"] == LABEL].iloc[0]
    assert (row["decided"], row["precision (random sample)"].split(" ± ")[0]) == ("40", "87.5%")
    calibration = at.dataframe[-1].value
    row = calibration[calibration["label"] == LABEL].iloc[0]
    assert (row["accept now"], row["proposed"]) == ("0.60", "0.90")
    assert f"label '{LABEL}': accept at 0.90 -> precision 100.0% +- " in _texts(at)
    button = at.button(key=PROPOSE)
    assert button.disabled and "Your role (analyst) cannot do this." in shown(button.help)


def test_the_quality_page_has_the_analytics_tab(history: Actor, app_as: Any) -> None:
    at = app_as("analyst")
    at.switch_page("pages/quality.py").run()
    assert not at.exception, at.exception
    assert "Analytics" in [t.label for t in at.tabs]
    assert {"Precision, random sample", "Precision, all reviews"} <= {m.label for m in at.metric}
    assert at.button(key=PROPOSE).disabled


def test_labels_calibrated_on_one_provider_and_model(history: Actor, demo_env: dict[str, str],
                                                     passwords: dict[str, str]) -> None:
    at = panel_app(PANEL, demo_actor(demo_env, passwords, "analyst"))
    picker = at.selectbox(key="qa_cal_model")
    assert picker.options[0] == "every provider" and "local / local-analyzer-v1" in picker.options
    picker.select(("local", "local-analyzer-v1")).run()
    assert LABEL in at.dataframe[-1].value["label"].tolist()  # the fixture's reviews are the local model's
    at.selectbox(key="qa_cal_model").select(("gemini", "gemini-2.5-flash")).run()
    assert not at.exception and LABEL not in at.dataframe[-1].value["label"].tolist()


def test_reviewer_cannot_propose(history: Actor) -> None:
    button = panel_app(PANEL, history).button(key=PROPOSE)
    assert button.disabled and "Your role (reviewer) cannot do this." in shown(button.help)


def test_admin_proposes_and_the_pipeline_rules_show_the_override(history: Actor, demo_env: dict[str, str],
                                                                 passwords: dict[str, str], app_as: Any) -> None:
    admin = demo_actor(demo_env, passwords, "admin")
    at = panel_app(PANEL, admin)
    assert not at.button(key=PROPOSE).disabled
    at.button(key=PROPOSE).click().run()
    assert any(f"accept threshold of '{LABEL}'" in shown(w.value) for w in at.warning)
    at.button(key=f"{PROPOSE}_confirm").click().run()
    assert not at.exception
    flashed = [(kind, shown(text)) for kind, text in at.session_state[FLASH_KEY]]
    assert flashed[0][0] == "success" and flashed[0][1].startswith(f"Label '{LABEL}' now accepts at 0.90")
    assert pipeline_settings.current_settings(admin).rules.thresholds(LABEL)[0] == 0.9
    entry = audit.list_entries(admin, entity_type="pipeline_config")[0]
    assert entry.action == "rules.update" and entry.reversible and LABEL in entry.after["label_overrides"]
    # The label accepts at 0.90 now: nothing left to propose for it.
    assert PROPOSE not in [b.key for b in panel_app(PANEL, admin).button]
    page = app_as("viewer")
    page.switch_page("pages/pipeline.py").run()
    overrides = page.dataframe[-1].value
    assert overrides[overrides["label"] == LABEL]["accept"].tolist() == [0.9]


def test_an_organization_without_reviews_says_what_to_do_next(demo_env: dict[str, str]) -> None:
    org = users.create_organization(name="Quiet Quality Org").id
    row = users.create_user(Actor.system("test", org), email="quiet@quality.example.com", display_name="q",
                            role="admin", password=None)
    at = panel_app(PANEL, Actor(user_id=row.id, email=row.email, role="admin", organization_id=org))
    texts = _texts(at)
    assert "No random-sample reviews yet: review in Random order to estimate precision." in texts
    assert "No tags in this window yet" in texts and "No reviews in this window yet" in texts
    assert not at.dataframe and not at.button
