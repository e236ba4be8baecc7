"""Export prompts (every version and label) to JSON or YAML, and import them back with validation.

An import is checked completely before anything is written, then written in one transaction: a file with
one bad template saves nothing. Importing a prompt that exists appends the versions whose text it does not
have yet (unchanged text is skipped). Labels are set only on prompts the import creates, and `production`
only for a role that may deploy; an existing prompt's labels are never moved by a file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import func, select

from aiconsole.platform import audit
from aiconsole.platform import formatting as fmt
from aiconsole.platform.actor import Actor
from aiconsole.platform.db.engine import get_engine, org_session
from aiconsole.platform.db.models import Prompt, PromptLabel, PromptVersion, User
from aiconsole.platform.db.types import utcnow
from aiconsole.platform.errors import ValidationFailed
from aiconsole.platform.settings import Settings
from aiconsole.prompts.templates import KNOWN_VARIABLES, validate_template
from aiconsole.prompts.versions import PRODUCTION, add_version, validate_label, validate_name

FORMAT: Literal["aiconsole.prompts/1"] = "aiconsole.prompts/1"
MAX_IMPORT_BYTES = 10 * 1024 * 1024
MAX_VERSIONS = 1000


def _as_value_error(check: Callable[[str], str], value: str) -> str:
    # pydantic reports ValueError with the field's location; our own error would lose it.
    try:
        return check(value)
    except ValidationFailed as exc:
        raise ValueError(f"{exc.message} {exc.hint or ''}".strip()) from None


class VersionDoc(BaseModel):
    """One version in an export file."""

    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, description="The version number in the exporting console")
    content: str
    message: str = Field(default="", max_length=500)
    variables: list[str] = Field(default_factory=list)
    author: str | None = None
    created_at: str | None = None


class PromptDoc(BaseModel):
    """One prompt in an export file: its versions and where its labels point (label -> version number)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    versions: list[VersionDoc] = Field(min_length=1, max_length=MAX_VERSIONS)
    labels: dict[str, int] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _as_value_error(validate_name, value)

    @model_validator(mode="after")
    def _consistent(self) -> PromptDoc:
        numbers = [v.version for v in self.versions]
        if len(set(numbers)) != len(numbers):
            raise ValueError("two versions have the same number")
        for label, number in self.labels.items():
            _as_value_error(validate_label, label)
            if number not in numbers:
                raise ValueError(f"label '{label}' points at version {number}, which is not in the file")
        return self


class ExportDoc(BaseModel):
    """The whole export file."""

    model_config = ConfigDict(extra="forbid")
    format: Literal["aiconsole.prompts/1"] = FORMAT
    exported_at: str | None = None
    organization: str | None = None
    prompts: list[PromptDoc] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> ExportDoc:
        names = [p.name.lower() for p in self.prompts]
        if len(set(names)) != len(names):
            raise ValueError("two prompts have the same name")
        return self


@dataclass(frozen=True)
class ImportReport:
    """What an import did."""

    created_prompts: int
    added_versions: int
    skipped_versions: int
    labels_set: int
    message: str


def export_prompts(actor: Actor, *, fmt: str = "json", prompt_ids: list[int] | None = None,
                   settings: Settings | None = None) -> str:
    """The organization's prompts (or `prompt_ids`) with all versions and labels, as JSON or YAML text."""
    actor.require("pipeline.view")
    if fmt not in ("json", "yaml"):
        raise ValidationFailed(f"Unknown export format '{fmt}'.", hint="Use json or yaml.")
    with org_session(actor.organization_id, engine=get_engine(settings)) as s:
        query = select(Prompt).where(Prompt.organization_id == actor.organization_id).order_by(Prompt.name)
        if prompt_ids is not None:
            query = query.where(Prompt.id.in_(prompt_ids))
        docs = []
        for p in s.scalars(query):
            versions = s.execute(select(PromptVersion, User.email).outerjoin(User, User.id == PromptVersion.author_id)
                                 .where(PromptVersion.prompt_id == p.id,
                                        PromptVersion.organization_id == actor.organization_id)
                                 .order_by(PromptVersion.version)).all()
            labels = s.execute(select(PromptLabel.label, PromptVersion.version)
                               .join(PromptVersion, PromptVersion.id == PromptLabel.version_id)
                               .where(PromptLabel.prompt_id == p.id,
                                      PromptLabel.organization_id == actor.organization_id)
                               .order_by(PromptLabel.label)).all()
            docs.append(PromptDoc.model_construct(
                name=p.name, description=p.description, labels={str(lb): int(n) for lb, n in labels},
                versions=[VersionDoc(version=v.version, content=v.content, message=v.message,
                                     variables=list(v.variables or []), author=email,
                                     created_at=v.created_at.isoformat()) for v, email in versions]))
    doc = ExportDoc(exported_at=utcnow().isoformat(), prompts=docs).model_dump(mode="json")
    if fmt == "yaml":
        return str(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120))
    return json.dumps(doc, indent=2, ensure_ascii=False)


def parse_export(data: str | bytes) -> ExportDoc:
    """Read an export file (JSON or YAML) and check its shape and every template; ValidationFailed otherwise."""
    if len(data) > MAX_IMPORT_BYTES:
        raise ValidationFailed(f"The file is {len(data):,} bytes; the limit is {MAX_IMPORT_BYTES:,}.",
                               hint="Export fewer prompts per file.")
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise ValidationFailed("The file is not UTF-8 text.", hint="Import a .json or .yaml prompt export.") from None
    raw: Any
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as json_err:
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (YAML line {mark.line + 1})" if mark is not None else ""
            raise ValidationFailed(f"The file is neither JSON ({json_err.msg} at line {json_err.lineno}) nor "
                                   f"YAML{where}.", hint="Import a file made by Export.") from None
    if not isinstance(raw, dict):
        raise ValidationFailed("The file does not hold a prompt export (expected a mapping with 'prompts').",
                               hint="Import a file made by Export.")
    try:
        doc = ExportDoc.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "file"
        raise ValidationFailed(f"The file is not a valid prompt export: {where}: "
                               f"{first['msg'].removeprefix('Value error, ')}"
                               + (f" (and {fmt.plural(exc.error_count() - 1, 'more problem')})"
                                  if exc.error_count() > 1 else "")
                               + ".", hint="Nothing was imported. Fix the file or export it again.") from None
    for p in doc.prompts:
        for v in p.versions:
            extras = [name for name in v.variables if name not in KNOWN_VARIABLES]
            try:
                validate_template(v.content, extra_variables=extras)
            except ValidationFailed as exc:
                raise ValidationFailed(f"{p.name} version {v.version}: {exc.message}",
                                       hint="Nothing was imported. Fix that version in the file.") from None
    return doc


def import_prompts(actor: Actor, *, data: str | bytes, settings: Settings | None = None) -> ImportReport:
    """Import an export file in one transaction (see the module doc for what is added and skipped)."""
    actor.require("prompts.edit")
    doc = parse_export(data)
    created = added = skipped = labels_set = 0
    notes: list[str] = []
    deploy = actor.allowed("prompts.label_production")
    with org_session(actor.organization_id, engine=get_engine(settings)) as s:
        for p in doc.prompts:
            prompt = s.scalar(select(Prompt).where(Prompt.organization_id == actor.organization_id,
                                                   func.lower(Prompt.name) == p.name.lower()).with_for_update())
            is_new = prompt is None
            if prompt is None:
                prompt = Prompt(organization_id=actor.organization_id, name=p.name, description=p.description,
                                created_by=actor.user_id, created_at=utcnow())
                s.add(prompt)
                s.flush()
                audit.record(s, actor=actor, action="prompt.create", entity_type="prompt", entity_id=prompt.id,
                             before=None, after={"name": p.name, "imported": True}, summary=f"Imported {p.name}")
                created += 1
            existing = s.execute(select(PromptVersion.content, PromptVersion.id).where(
                PromptVersion.prompt_id == prompt.id, PromptVersion.organization_id == actor.organization_id)).all()
            by_content = {c: vid for c, vid in existing}
            number = int(s.scalar(select(func.coalesce(func.max(PromptVersion.version), 0))
                                  .where(PromptVersion.prompt_id == prompt.id)) or 0)
            local: dict[int, int] = {}
            for v in sorted(p.versions, key=lambda v: v.version):
                if v.content in by_content:
                    skipped += 1
                else:
                    number += 1
                    extras = [name for name in v.variables if name not in KNOWN_VARIABLES]
                    variables = validate_template(v.content, extra_variables=extras)
                    row = add_version(s, actor, prompt, number=number, content=v.content, variables=variables,
                                      message=((v.message or "Imported") + f" (imported v{v.version})")[:500])
                    by_content[v.content] = row.id
                    added += 1
                local[v.version] = by_content[v.content]
            for label, source in p.labels.items() if is_new else ():
                if label == PRODUCTION and not deploy:
                    notes.append(f"{p.name}: production not set (your role cannot deploy)")
                    continue
                s.add(PromptLabel(organization_id=actor.organization_id, prompt_id=prompt.id, label=label,
                                  version_id=local[source], updated_by=actor.user_id, updated_at=utcnow()))
                labels_set += 1
        audit.record(s, actor=actor, action="prompt.import", entity_type="prompt", entity_id=None, before=None,
                     after={"prompts": [p.name for p in doc.prompts], "created": created, "added": added,
                            "skipped": skipped, "labels": labels_set},
                     summary=f"Imported {fmt.plural(len(doc.prompts), 'prompt')}: {fmt.plural(added, 'new version')}, "
                             f"{fmt.count(skipped)} unchanged")
    message = (f"Imported {fmt.plural(len(doc.prompts), 'prompt')}: {fmt.count(created)} new, "
               f"{fmt.plural(added, 'version')} added, {fmt.count(skipped)} unchanged skipped, "
               f"{fmt.plural(labels_set, 'label')} set.") + "".join(f" {n}." for n in notes)
    return ImportReport(created, added, skipped, labels_set, message)
