"""Prompt lab: test runs with the local provider on sample photos, tag differences, refusals."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
from PIL import Image
from sqlalchemy import func, select

from aiconsole.admin import users
from aiconsole.lab import photos as lab_photos
from aiconsole.lab import prompt_lab
from aiconsole.lab.prompt_lab import PhotoChoice, tag_diff
from aiconsole.pipeline.rules import RuleSet
from aiconsole.platform.actor import Actor
from aiconsole.platform.db import service_session
from aiconsole.platform.db.models import (
    AiProcessingResult,
    AuditLog,
    Photo,
    PipelineConfig,
    Prompt,
    PromptLabel,
    PromptVersion,
)
from aiconsole.platform.errors import ImageRejected, NotFound, PermissionDenied, ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.prompts.render import PromptError
from aiconsole.providers.base import AnalysisRequest, ImageInput, ProviderSettings
from aiconsole.providers.pricing import LOCAL_MODEL
from aiconsole.providers.registry import build_provider
from aiconsole.providers.samples import demo_photo, sample_photo

PRODUCTION_TEXT = "Give up to {max_tags} labels in {language}."
STAGING_TEXT = "Label this {width}x{height} photo with {{ max_tags }} tags about {topic}."


@dataclass
class World:
    a: int
    b: int
    prompt_id: int
    production_id: int
    staging_id: int
    photo_a: int
    photo_b: int

    def actor(self, role: str, org: int | None = None) -> Actor:
        return Actor(user_id=None, email=f"{role}@example.com", role=role, organization_id=org or self.a)


def _photo(org: int, name: str) -> Photo:
    d = demo_photo(name, 0)
    return Photo(organization_id=org, sha256=d.sha256, storage_uri=d.uri, filename=f"{name}.jpg",
                 content_type="image/jpeg", byte_size=d.byte_size, width=d.width, height=d.height, source="demo",
                 status="completed")


@pytest.fixture
def world(settings: Settings) -> World:
    """Orgs A and B on SQLite: A with a prompt (production v1, v2), rules with an override and a photo; B a photo."""
    return _world(settings)


@pytest.fixture
def any_world(any_settings: Settings) -> World:
    """The same world on SQLite and on PostgreSQL (row-level security)."""
    return _world(any_settings)


def _world(settings: Settings) -> World:
    a = users.create_organization(name="Lab A", settings=settings).id
    b = users.create_organization(name="Lab B", settings=settings).id
    with service_session() as s:
        prompt = Prompt(organization_id=a, name="tagger", description="")
        s.add(prompt)
        s.flush()
        prod = PromptVersion(organization_id=a, prompt_id=prompt.id, version=1, content=PRODUCTION_TEXT,
                             variables=["max_tags", "language"])
        staging = PromptVersion(organization_id=a, prompt_id=prompt.id, version=2, content=STAGING_TEXT,
                                variables=["width", "height", "topic"])
        s.add_all([prod, staging])
        s.flush()
        s.add(PromptLabel(organization_id=a, prompt_id=prompt.id, label="production", version_id=prod.id))
        # "brown" accepted from 0.1 for this org: the verdicts must come from the org's own rules.
        s.add(PipelineConfig(organization_id=a, active_provider="local", active_model=LOCAL_MODEL,
                             active_prompt_id=prompt.id, accept_threshold=0.8, reject_threshold=0.4,
                             label_overrides={"brown": {"accept": 0.1, "reject": 0.05}}))
        pa, pb = _photo(a, "coffee"), _photo(b, "chelsea")
        s.add_all([pa, pb])
        s.flush()
        return World(a, b, prompt.id, prod.id, staging.id, pa.id, pb.id)


def _local_tags(name: str) -> list[tuple[str, float]]:
    data = sample_photo(name, 0)
    d = demo_photo(name, 0)
    result = build_provider("local", ProviderSettings()).analyze(
        ImageInput(data, "image/jpeg", d.width, d.height, d.sha256), AnalysisRequest(model=LOCAL_MODEL))
    return [(t.label, t.confidence) for t in result.tags]


# ----------------------------------------------------------------------------------------- known answers


def test_tag_diff_known_answers() -> None:
    d = tag_diff(["cat", "pet", "fur", "grass"], ["cat", "dog", "pet"])
    assert (d.added, d.removed, d.common) == (("fur", "grass"), ("dog",), ("cat", "pet"))
    assert d.jaccard == pytest.approx(2 / 5)
    assert tag_diff(["a", "b"], ["b", "a"]).jaccard == 1.0
    assert tag_diff(["a"], ["b"]) == prompt_lab.TagDiff(("a",), ("b",), (), 0.0)
    assert tag_diff([], []).jaccard == 1.0  # two empty answers agree
    assert tag_diff(["a"], []).jaccard == 0.0


def test_variables_parsed_and_checked() -> None:
    assert prompt_lab.parse_variables("# comment\nlanguage = German\n\ntopic=food = drink\n") == {
        "language": "German", "topic": "food = drink"}
    with pytest.raises(ValidationFailed, match=r"Line 1 .* no '='"):
        prompt_lab.parse_variables("language German")
    with pytest.raises(ValidationFailed, match="not a variable name"):
        prompt_lab.check_variables({"1st": "x"})
    with pytest.raises(ValidationFailed, match="over 2,000"):
        prompt_lab.check_variables({"topic": "x" * 2001})


def _count(model: type) -> int:
    with service_session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


# ----------------------------------------------------------------------------------------- runs


def test_draft_on_a_sample_with_the_local_provider_and_the_orgs_rules(any_world: World) -> None:
    world = any_world
    before = (_count(Photo), _count(AiProcessingResult), _count(AuditLog))
    run = prompt_lab.run_test(world.actor("developer"), photo=PhotoChoice.from_sample("chelsea"), provider="local",
                              draft="Tag it in {language}, at most {{ max_tags }}.", variables={"language": "German"})
    assert run.ok and run.error is None
    assert [(t.label, t.confidence) for t in run.tags] == _local_tags("chelsea")
    rules = RuleSet(0.8, 0.4, {"brown": {"accept": 0.1, "reject": 0.05}})
    assert [t.verdict for t in run.tags] == [rules.verdict(t.label, t.confidence) for t in run.tags]
    verdicts = {t.label: t.verdict for t in run.tags}
    # Objects: cat 0.92 accepted, the breed unsure (egyptian mau 0.41 to review, tiger cat 0.35 rejected).
    # Descriptions are secondary, under the reject threshold (orientation 0.35); brown (0.16) is accepted only
    # by the org's override.
    assert verdicts == {"animal": "accepted", "mammal": "accepted", "cat": "accepted", "pet": "accepted",
                        "egyptian mau": "needs_review", "tiger cat": "rejected", "landscape orientation": "rejected",
                        "small image": "rejected", "tabby cat": "rejected", "brown": "accepted",
                        "orange": "rejected", "gray": "rejected"}
    assert run.photo_status == "needs_review"  # the breed waits for a person
    assert run.rendered_prompt == "Tag it in German, at most 15."
    assert run.prompt_source == "unsaved draft" and run.prompt_version_id is None
    assert not run.prompt_sent and any("takes no prompt" in n for n in run.notes)
    assert (run.cost_micros, run.cost_text, run.units, run.input_tokens, run.output_tokens) == (0, "$0.00", 1, 0, 0)
    assert 0 <= run.latency_ms <= run.total_ms
    assert (run.raw_response["width"], run.raw_response["height"]) == (451, 300)
    assert (run.photo.source, run.photo.width, run.photo.height) == ("sample", 451, 300)
    # A test changes nothing: no photo queued, no result recorded, nothing audited.
    assert (_count(Photo), _count(AiProcessingResult), _count(AuditLog)) == before


def test_saved_version_and_the_production_prompt_are_rendered(world: World) -> None:
    dev = world.actor("developer")
    run = prompt_lab.run_test(dev, photo=PhotoChoice.from_sample("coffee"), provider="local",
                              version_id=world.staging_id, variables={"topic": "food"})
    assert run.rendered_prompt == "Label this 600x400 photo with 15 tags about food."
    assert (run.prompt_source, run.prompt_version_id) == ("tagger v2", world.staging_id)
    production = prompt_lab.run_test(dev, photo=PhotoChoice.from_sample("coffee"), provider="local")
    assert production.rendered_prompt == "Give up to 15 labels in English."
    assert (production.prompt_source, production.prompt_version_id) == ("production: tagger v1",
                                                                        world.production_id)
    with pytest.raises(PromptError, match=r"variable.*topic.*no value"):
        prompt_lab.run_test(dev, photo=PhotoChoice.from_sample("coffee"), provider="local",
                            version_id=world.staging_id)


def test_compare_with_production_on_the_same_photo(any_world: World) -> None:
    world = any_world
    cmp = prompt_lab.compare_with_production(world.actor("admin"), photo=PhotoChoice.from_photo(world.photo_a),
                                             provider="local", draft="Anything")
    assert cmp.test.ok and cmp.production.ok
    assert (cmp.production.provider, cmp.production.model) == ("local", LOCAL_MODEL)
    # Production runs local, which takes no prompt: none is rendered for it, as in the worker.
    assert (cmp.production.prompt_source, cmp.production.rendered_prompt) == ("none", None)
    assert cmp.test.labels() == cmp.production.labels() == [label for label, _ in _local_tags("coffee")]
    assert cmp.diff is not None and cmp.diff.jaccard == 1.0 and not cmp.diff.added and not cmp.diff.removed
    assert cmp.test.photo.source == "photo" and "coffee.jpg" in cmp.test.photo.label


def test_provider_error_is_the_answer_not_an_exception(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI"):
        monkeypatch.delenv(key, raising=False)
    cmp = prompt_lab.compare_with_production(world.actor("developer"), photo=PhotoChoice.from_sample("coffee"),
                                             provider="gemini", model="gemini-2.5-flash-lite", draft="Label it.")
    err = cmp.test.error
    assert err is not None and err.kind == "auth" and "No Gemini API key" in err.message
    assert "gemini provider settings" in str(err) and not err.retryable
    assert cmp.test.rendered_prompt == "Label it." and cmp.test.prompt_sent and not cmp.test.tags
    assert cmp.production.ok and cmp.diff is None  # production still answered; no diff against a failure


# ----------------------------------------------------------------------------------------- refusals


def test_uploads_are_validated_like_intake_and_never_stored(world: World, settings: Settings) -> None:
    dev = world.actor("developer")
    jpeg = sample_photo("coffee", 3)
    with pytest.raises(ImageRejected, match=r"'broken.jpg' is a JPEG image that cannot be"):
        prompt_lab.run_test(dev, photo=PhotoChoice.from_upload("broken.jpg", jpeg[: len(jpeg) // 2]),
                            provider="local")
    with pytest.raises(ImageRejected, match="is not an image: its content is plain text"):
        prompt_lab.run_test(dev, photo=PhotoChoice.from_upload("notes.png", b"hello, this is not a photo"),
                            provider="local")
    with pytest.raises(ImageRejected, match="empty"):
        prompt_lab.run_test(dev, photo=PhotoChoice.from_upload("zero.jpg", b""), provider="local")
    photos = _count(Photo)
    run = prompt_lab.run_test(dev, photo=PhotoChoice.from_upload("mine.jpg", jpeg), provider="local")
    assert run.ok and run.photo.source == "upload" and run.photo.label == "mine.jpg"
    assert _count(Photo) == photos and not any(settings.photo_dir.rglob("*.jpg"))


def test_other_organizations_photos_and_versions_are_refused(any_world: World) -> None:
    world = any_world
    dev = world.actor("developer")
    with pytest.raises(NotFound, match=f"no photo #{world.photo_b} in this organization"):
        prompt_lab.run_test(dev, photo=PhotoChoice.from_photo(world.photo_b), provider="local")
    b_dev = world.actor("developer", world.b)
    with pytest.raises(NotFound, match=f"no prompt version #{world.staging_id}"):
        prompt_lab.run_test(b_dev, photo=PhotoChoice.from_sample("coffee"), provider="local",
                            version_id=world.staging_id)
    assert prompt_lab.run_test(b_dev, photo=PhotoChoice.from_photo(world.photo_b), provider="local").ok
    with pytest.raises(NotFound, match="no photo"):
        lab_photos.photo_preview(b_dev, photo=PhotoChoice.from_photo(world.photo_a))


@pytest.mark.parametrize("role", ["viewer", "analyst", "reviewer"])
def test_read_only_roles_are_refused(world: World, role: str) -> None:
    actor = world.actor(role)
    with pytest.raises(PermissionDenied, match=r"testing\.run"):
        prompt_lab.run_test(actor, photo=PhotoChoice.from_sample("coffee"), provider="local")
    with pytest.raises(PermissionDenied):
        prompt_lab.compare_with_production(actor, photo=PhotoChoice.from_sample("coffee"), provider="local")
    with pytest.raises(PermissionDenied):
        prompt_lab.lab_options(actor)
    with pytest.raises(PermissionDenied):
        lab_photos.photo_preview(actor, photo=PhotoChoice.from_sample("coffee"))


def test_bad_choices_are_refused_before_any_call(world: World) -> None:
    dev = world.actor("developer")
    sample = PhotoChoice.from_sample("coffee")
    with pytest.raises(ValidationFailed, match="no provider 'openai'"):
        prompt_lab.run_test(dev, photo=sample, provider="openai")
    with pytest.raises(ValidationFailed, match=r"gemini has no model 'builtin/stable'.*gemini-2.5-flash"):
        prompt_lab.run_test(dev, photo=sample, provider="gemini", model="builtin/stable")
    with pytest.raises(ValidationFailed, match="not both"):
        prompt_lab.run_test(dev, photo=sample, provider="local", draft="x", version_id=world.staging_id)
    with pytest.raises(PromptError, match="The draft cannot be tested: The prompt is empty"):
        prompt_lab.run_test(dev, photo=sample, provider="local", draft="  \n")
    with pytest.raises(PromptError, match="cannot be tested: Line 2: 'colour' is not a known variable"):
        prompt_lab.run_test(dev, photo=sample, provider="local", draft="Tags\nin {{ colour }}")
    with pytest.raises(PromptError, match=r"Line 1: '\{% if %\}' is never closed"):
        prompt_lab.run_test(dev, photo=sample, provider="local", draft="Tags {% if max_tags %} unclosed")
    with pytest.raises(PromptError, match="64 KB"):
        prompt_lab.run_test(dev, photo=sample, provider="local", draft="x" * (1024 * 1024))
    # An unknown {word} without a value is sent as written, with a warning; given a value, it is filled in.
    run = prompt_lab.run_test(dev, photo=sample, provider="local", draft="Tags for a {mood} photo",
                              variables={"mood": None})
    assert run.rendered_prompt == "Tags for a {mood} photo" and any("'{mood}' is not a known" in n for n in run.notes)
    run = prompt_lab.run_test(dev, photo=sample, provider="local", draft="Tags for a {mood} photo",
                              variables={"mood": "happy"})
    assert run.rendered_prompt == "Tags for a happy photo"
    with pytest.raises(NotFound, match="no sample photo 'unicorn'"):
        prompt_lab.run_test(dev, photo=PhotoChoice.from_sample("unicorn"), provider="local")


def test_options_and_preview(world: World) -> None:
    opts = prompt_lab.lab_options(world.actor("developer"))
    assert (opts.active_provider, opts.active_model, opts.production_version_id) == ("local", LOCAL_MODEL,
                                                                                     world.production_id)
    assert opts.providers["gemini"][0] == "gemini-2.5-flash" and set(opts.providers) == {"local", "google-vision",
                                                                                         "gemini"}
    jpeg = lab_photos.photo_preview(world.actor("admin"), photo=PhotoChoice.from_sample("coffee"), max_side=64)
    with Image.open(io.BytesIO(jpeg)) as im:
        assert im.format == "JPEG" and max(im.size) == 64


def test_a_broken_production_prompt_is_a_finding_not_a_refusal(world: World) -> None:
    with service_session() as s:
        cfg = s.get(PipelineConfig, world.a)
        assert cfg is not None
        cfg.active_provider, cfg.active_model = "gemini", "gemini-2.5-flash"
        version = s.get(PromptVersion, world.production_id)
        assert version is not None
        version.content = "Tags in {{ dialect }}"  # saved before the editor checked templates, say
    cmp = prompt_lab.compare_with_production(world.actor("developer"), photo=PhotoChoice.from_sample("coffee"),
                                             provider="local", draft="Fine.")
    assert cmp.test.ok and cmp.diff is None
    err = cmp.production.error
    assert err is not None and err.kind == "prompt" and "'dialect' is undefined" in err.message
    assert (cmp.production.provider, cmp.production.prompt_source) == ("gemini", "production: tagger v1")
