"""Integrations with other libraries; each imports only asyncresolve's public API."""
