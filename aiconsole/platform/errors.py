"""One exception tree. Every message says what went wrong and what the user can do about it."""

from __future__ import annotations


class AiconsoleError(Exception):
    """Base of every error aiconsole raises on purpose; `str(err)` is safe to show a user."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message} {hint}")


class ConfigError(AiconsoleError):
    """A setting is missing or invalid."""


class ValidationFailed(AiconsoleError):
    """Input was refused; nothing was saved."""


class NotFound(AiconsoleError):
    """The thing asked for does not exist in this organization."""


class PermissionDenied(AiconsoleError):
    """The current user's role does not allow this action."""


class AuthError(AiconsoleError):
    """Login failed, the account is locked or disabled, or the session expired."""


class ConflictError(AiconsoleError):
    """Someone else changed the same thing first; reload and try again."""


class ImageRejected(ValidationFailed):
    """An uploaded or enqueued file is not an acceptable image."""


class ProviderError(AiconsoleError):
    """A vision provider call failed; `retryable` says whether trying again can help."""

    def __init__(self, message: str, *, kind: str, retryable: bool, hint: str | None = None) -> None:
        self.kind = kind
        self.retryable = retryable
        super().__init__(message, hint=hint)
