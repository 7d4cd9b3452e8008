"""users feature."""
