"""Host-side probes of the go-live checks: read as text and run on the host by its python3.

Standard library only, plus the host tools' own modules from the tools zip on the host. They
are never imported on the operator's side; each runs its ``main()`` as ``__main__``.
"""
