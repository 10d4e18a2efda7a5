"""The gateway's own routes; everything else is forwarded by the routing table."""
