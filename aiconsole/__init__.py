"""aiconsole: a console for a production AI photo-tagging pipeline."""

__version__ = "0.1.0"
