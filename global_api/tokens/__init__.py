"""tokens feature."""
