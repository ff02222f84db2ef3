"""Drop-in resolvers for crawlers' HTTP clients, each in its own module and each needing its
extra: ``integrations.aiohttp`` (``asyncresolve[aiohttp]``), ``integrations.httpx``
(``asyncresolve[httpx]``), ``integrations.scrapy`` (``asyncresolve[scrapy]``); and
``integrations.dask`` (``asyncresolve[dask]``), bulk resolution on a Dask cluster. Each
imports only asyncresolve's public API.

They share ``connect_addresses`` (the addresses to connect to, in order, after the
``AddressPolicy``) and ``happy_eyeballs.connect_tcp`` (RFC 8305 racing over them).
"""

from ._connect import connect_addresses, os_error_for

__all__ = ["connect_addresses", "os_error_for"]
