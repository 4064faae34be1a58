"""secure-endpoint-monitoring: the Cisco Secure Endpoint connector's faults for Prometheus and Nagios/Icinga.

The packages live in the repository's top-level ``checks/`` and ``exporter/`` folders; this package holds
them (as symlinks in a checkout, as copies once installed) so that they install under one name that no
other project's ``checks`` can collide with.
"""
