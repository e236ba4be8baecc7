"""Prompts: templates checked in a sandbox, immutable versions with labels, the catalog, import/export."""
