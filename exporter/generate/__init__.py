"""Writes the Prometheus rules, their promtool tests, Grafana dashboards and Grafana alerting from the catalogue.

    python -m secure_endpoint_monitoring.exporter.generate [--out DIR] [--selector 'job="secure_endpoint"']
        [--runbook-url URL]

Every other setting (each alert's ``for:``, when data is stale or definitions old) is in ``config``.

One module per output: ``prometheus_rules`` (alerts and recording rules),
``promtool_tests`` (their unit tests), ``host_dashboard`` and
``fleet_dashboard`` (built with Grafana's Foundation SDK), ``grafana_alerting``
(Grafana-managed rules linked to the host dashboard's panels) and
``grafana_provisioning`` (the dashboard provider and a data source example).
The catalogue in ``checks/catalog.py`` is their only input, so a new fault
needs no edit here. The generated files are committed; a test fails when
they differ from a fresh generation. The SDK is needed only here (the
``grafana`` extra), never by the exporter or the plugin at run time.
"""
