"""The `aiconsole` command, one module per command group."""
