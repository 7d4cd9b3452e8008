"""The router: the single public entry point that sends each request to the right region."""
