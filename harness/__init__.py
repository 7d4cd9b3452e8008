"""Tooling that starts things for tests, benchmarks and the local stack; no service imports it.

PostgreSQL servers from local binaries (`pg`), uvicorn processes and echo upstreams (`procs`,
`upstream_app`), an in-thread HTTP server (`live`), token issuers (`tokens`), a throwaway CA
(`tls`) and hostile raw-socket clients (`attacks`).
"""
