"""API keys at the gateway: the keys file (`keyfile`, `tokens`), the store that verifies
presented keys (`store`), what each path needs (`policy`), the ASGI check (`middleware`),
its counter (`metrics`), `easel keys` (`admin`) and the parts built from settings (`config`)."""
