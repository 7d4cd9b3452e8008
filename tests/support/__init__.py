"""Test support: live servers, PostgreSQL databases, token minting."""
