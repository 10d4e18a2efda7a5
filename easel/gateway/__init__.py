"""The gateway: one public entry point routing to the services."""
