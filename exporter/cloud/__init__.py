"""``secure-endpoint-cloud-exporter``: the fleet as Cisco's cloud API sees it, every computer (Windows too).

One module per concern: ``credentials`` (the client id and API key), ``api`` (one bounded HTTPS request),
``fleet`` (API answers -> a compact snapshot), ``poller`` (the background loop, its budget and backoff),
``exposition`` (a snapshot -> the text format, streamed) and ``main`` (flags and the server).
"""
