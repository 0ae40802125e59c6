"""The analysis layer: what a flow's bytes and packets mean.

``inspector`` reads payload (a ``TLSParser`` per direction), ``signatures`` names cleartext protocols,
``hints`` holds what ports and ``--decode-as`` suggest (and Linkerd identities), ``addresses`` the
localhost rules, and ``verdict`` turns the facts any engine gathered into one row of the flows table.

Rule: standard library only (the core runs on a bare python3); nothing here reads a capture.
"""
