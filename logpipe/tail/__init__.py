"""tail stage."""
