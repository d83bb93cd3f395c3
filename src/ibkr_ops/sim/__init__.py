"""Simulated IB Gateway + IBC for offline tests of deployments and trading bots.

Standard library only: it runs inside a sandbox guest with plain ``python3`` (as a copied
package, ``python3 -m ibkr_ops.sim``, or the zipapp the simulated installer embeds).

- ``cli``: ``ibkr-gateway-sim`` (run, ``ctl``, ``logins``, ``api``).
- ``gateway``: the process and what its parts share; the parts: ``login`` (the login
  lifecycle), ``apiserver`` (the API port and sessions), ``faults``, ``commandserver``
  (IBC's), ``control`` (the test's control channel), ``display`` (the X connection);
  ``lines``: lines as Java reads them. ``apichild``: the Java stand-in's API engine.
- ``api``: every API request, answered; ``messages``: replies per server version; ``fields``:
  reading requests. ``universe``: instruments and prices; ``history``: bars and ticks;
  ``paper``: the paper account, orders and fills.
- ``protocol``: TWS API framing. ``config``: settings and faults. ``logins``: login record
  (format in its docstring). ``javacli``: the simulated installation's ``bin/java``.
- ``artifacts``: the simulated Gateway installer and the simulated IBC zip.
"""
