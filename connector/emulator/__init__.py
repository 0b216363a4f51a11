"""An emulated ServiceNow instance for tests, demos and benchmarks.

Public surface (import from the modules; this package stays import-light so
``schema``/``dataset`` users do not pull in the HTTP stack):

- ``server.EmulatorServer``: serve an instance on loopback (HTTP or HTTPS).
- ``instance.Instance``: data and behaviour without HTTP (insert/update/delete,
  rows/count, ``faults``, ``truth``, ``start_mutator``/``stop_mutator``).
- ``faults.FaultSettings`` / ``faults.RateLimitRule``: run-time misbehaviour.
- ``app.EmulatorApp``: the WSGI application.

Modules: ``storage`` (SQLite), ``registry``/``metadata`` (the live dictionary),
``query`` (encoded queries to SQL), ``gsdates`` (``gs.*`` helpers), ``render``
(display-value shapes), ``handlers`` (Table/Aggregate/Batch APIs), ``auth``
(Basic, OAuth, rate limits), ``tls`` (throw-away CA), ``commands`` (CLI).
"""
