"""The demo organization: a deterministic, living seed of every area."""
