"""Administration: organizations, users and the audit log's revert."""
