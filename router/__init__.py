"""The router: the single public entry point that sends each request to the right region.

Where things live:

- `proxy/` the hot path, a raw ASGI app (no framework routing): `resolve.py` decides the
  upstream from the path alone (global prefixes, `/regions/{region}/...` with the prefix
  stripped, or the region inside the first id; cinemas through the cached map, refreshed once
  on a miss); `app.py` applies the body limit and rate limits, forwards and streams the answer;
  `clients.py` names the client (socket peer, or `ROUTER_TRUSTED_PROXIES`), and `headers.py`
  replaces whatever forwarding headers the client sent.
- `upstreams/` one `Http1Pool` (own HTTP/1.1 keep-alive client, see
  docs/benchmarks/router.md) per regional endpoint; health state in memory (`pool.py`: active
  probes with rise/fall, passive ejection on refused connections and 5xx streaks); `send.py`
  picks the least-loaded healthy endpoint and fails over with tenacity inside one deadline;
  `tls.py` the one TLS context (CA bundle, client certificate) for `https://` upstreams.
- `directory/` the directory map cache (conditional GET with ETag, background refresh, static
  JSON fallback at start-up when global_api is down).
- `fanout/`, `admin/` the router's own endpoints (FastAPI): cross-region reads and
  `GET /router/regions`.

Retry rule: GET/HEAD/OPTIONS and any request carrying `Idempotency-Key` are retried on another
endpoint after a transport failure. Any other write is retried only when the connection could
not be made at all (`ConnectFailed`: connect refused or timed out, or no pooled connection came
free): the request bytes are written only after a connection exists, so none of them left the
router. A write that failed after it was sent gets 502/504 and is never repeated.
"""
