"""global_api tests."""
