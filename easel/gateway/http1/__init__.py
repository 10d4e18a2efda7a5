"""A lean HTTP/1.1 client for the gateway's calls to remote services.

Why not aiohttp or httpx: measured on the proxied path (benchmarks/README.md, issue 22),
aiohttp's client spends ~0.4 ms of CPU on a small request and httpx's pool more, while the
server side (uvicorn on httptools) spends ~0.05 ms. This package speaks HTTP/1.1 over
asyncio's transports with httptools, the C parser uvicorn itself uses, and keeps no more
state than a proxy needs: a keep-alive pool per service, one exchange per connection at a
time, both bodies streamed with flow control, and httpx's exceptions for every failure, so
callers translate them as they do httpx's own.

- `pool.Http1Pool`: `await pool.send(method, target, headers, body)` -> `Http1Response`.
- `transport.Http1Transport`: the same pool as an `httpx.AsyncBaseTransport` (health
  probes, and the transport contract tests shared with the aiohttp transport).
"""
