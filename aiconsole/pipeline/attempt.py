"""What serves one photo in one attempt: its route, prompt and experiment variant, and the move to the fallback.

`Caller.process` (aiconsole.pipeline.calls) builds an `Attempt` from the route, renders its prompt for the
provider that serves it, and when the primary's call fails in a way that calls for it (routing's
`moves_to_fallback`) moves it to the fallback within the same attempt: the photo's trace then shows a
"fallback" step (from, to, the error kind, its reason kind and message) followed by the new "route" step.
A photo served by the fallback is no longer counted for its experiment variant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiconsole.pipeline.context import OrgContext
from aiconsole.pipeline.failures import reason_kind
from aiconsole.pipeline.queue import ClaimedPhoto
from aiconsole.pipeline.routing import RouteDecision
from aiconsole.platform.errors import ProviderError
from aiconsole.prompts.render import PromptError, PromptSpec, prompt_values, render_prompt
from aiconsole.providers.registry import capabilities, default_model


@dataclass
class Attempt:
    """The route and prompt of one photo's attempt. `allowed`: a breaker slot of the route's provider is held
    until its call goes out (freed by the caller if none does)."""

    decision: RouteDecision
    spec: PromptSpec | None
    variables: dict[str, Any]
    experiment_id: int | None
    variant: str | None
    allowed: bool
    prompt_version_id: int | None = None

    def off_experiment(self, ctx: OrgContext, trace: list[dict[str, Any]]) -> None:
        """Served by the fallback: the variant did not run as designed, and counting it would blur the comparison."""
        if self.experiment_id is None:
            return
        trace.append({"step": "experiment", "dropped": f"served by the fallback {self.decision.provider}",
                      "variant": self.variant, "ms": 0.0})
        self.experiment_id, self.variant, self.spec, self.variables = None, None, ctx.prompt, {}

    def render(self, photo: ClaimedPhoto, *, max_labels: int, trace: list[dict[str, Any]]) -> str | None:
        """The prompt for the route's provider (None when it takes none or there is none); traced."""
        self.prompt_version_id = None
        if not capabilities(self.decision.provider).takes_prompt:
            return None
        if self.experiment_id is not None and self.spec is None:
            raise PromptError(f"Experiment {self.experiment_id} variant {self.variant!r} names a prompt version "
                              "that does not exist in this organization.", hint="Fix the variant in the Testing Lab.")
        if self.spec is None:
            return None
        values = prompt_values(max_tags=max_labels, width=photo.width, height=photo.height,
                               content_type=photo.content_type, overrides=self.variables)
        prompt = render_prompt(self.spec, values)
        self.prompt_version_id = self.spec.version_id
        trace.append({"step": "prompt", "version_id": self.spec.version_id, "chars": len(prompt), "ms": 0.0})
        return prompt

    def move_to(self, ctx: OrgContext, fallback: str, error: ProviderError, trace: list[dict[str, Any]]) -> None:
        """Route to `fallback` after the primary failed with `error` (the caller took the fallback's breaker slot)."""
        primary = self.decision.provider
        trace.append({"step": "fallback", "from": primary, "to": fallback, "kind": error.kind,
                      "reason_kind": reason_kind(error.kind), "message": error.message[:300], "ms": 0.0})
        self.decision = RouteDecision(fallback, default_model(fallback),
                                      f"fallback {fallback}: {primary} failed ({error.kind})", fallback=True)
        self.allowed = True
        trace.append(self.decision.trace())
        self.off_experiment(ctx, trace)
