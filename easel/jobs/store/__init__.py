"""Job stores: SQLite (default, one machine) and Redis (many machines), one interface."""
