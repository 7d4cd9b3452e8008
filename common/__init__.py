"""Code shared by every service: ids, errors, auth, database, observability, PostgreSQL harness."""
