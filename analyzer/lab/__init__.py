"""The mesh lab: pods in network namespaces, Linkerd-like mTLS sidecars, real tshark captures.

Modules: ``topology`` (the wiring and expected verdicts), ``pki`` (trust anchor and leaves), ``kube``
(pods.json), ``netns`` (namespaces, nftables, processes), ``proxy``/``apps``/``traffic`` (what runs in
the pods), ``control`` (up/capture/down/status), ``cli`` (the click group ``lab``), ``verify`` (checks a
capture against expected edges with tshark alone). Nothing here is imported by the analyzer core.
"""
