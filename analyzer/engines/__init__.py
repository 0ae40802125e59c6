"""Second opinions: engines that produce the same flow rows as the native pipeline from another source.

``tshark``: Wireshark's own dissectors, one streaming ``tshark -T fields`` pass (``engines/tshark/``).
``compare``: run two engines over the same capture and list the flows where they disagree.
"""

ENGINES = ("native", "tshark")
