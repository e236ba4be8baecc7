"""Pipeline Control: every change validated, audited, version-checked and reversible."""
