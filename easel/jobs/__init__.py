"""Job manager: durable async generation jobs, on SQLite (one machine) or Redis (many)."""
