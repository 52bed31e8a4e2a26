"""Load testing and fault injection for Frontdoor: ``bin/loadtest`` and ``scenarios/``.

Modules, one idea each: ``target`` (where load may go), ``client`` (keep-alive HTTP/1.1 on
gevent sockets), ``schedule`` (open- and closed-loop arrivals), ``mix`` (weighted endpoints,
realistic parameters), ``phase`` (fault timeline -> phases), ``scenario`` (TOML files),
``faults`` (the admin-API client that applies a timeline), ``histogram`` (HDR adapter),
``stats`` (per phase/endpoint/second accumulation), ``runner`` (drives a run), ``report``
(JSON and tables), ``plot`` (PNG), ``cli`` (``main``). Nothing here runs at import time.
"""
