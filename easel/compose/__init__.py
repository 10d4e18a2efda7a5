"""The composition: the only code that imports several services. It holds the service
table, builds services in-process (running their lifespans, over streaming transports) or
reaches them by URL, and composes the all-in-one process, the gateway and the worker."""
