"""The generator's settings in one place, as node-mixin's config.libsonnet holds a mixin's: what the rules
select, how long each alert waits before it fires, and when data counts as stale or old. The command line
overrides the first three (``--selector``, ``--runbook-url``, ``--for-default``); to change another,
change it here and run ``python -m secure_endpoint_monitoring.exporter.generate --out .``."""

from __future__ import annotations

from ...checks import catalog

# Which series the rules and dashboards read.
SELECTOR = 'job="secure_endpoint"'
# The base of every runbook_url of this project's own alerts (Cisco's faults link to Cisco's tables).
RUNBOOK_URL = catalog.PROJECT_RUNBOOK_URL
# A fault alert's `for:`, unless the catalogue gives the fault its own (Fault.alert_for).
FAULT_FOR = "5m"
# The `for:` of each alert on the exporter's and the connector's health.
HEALTH_FOR = {
    "ExporterDown": "5m",
    "EvaluationStale": "5m",
    "TextfileStale": "5m",
    "MetricsVanished": "10m",
    "CollectorFailing": "15m",
    "StatusUnavailable": "15m",
    "ConnectorNotInstalled": "15m",
    "DaemonNotRunning": "5m",
    "NotConnected": "15m",
    "DefinitionsStale": "1h",
    "FaultCheckUnknown": "1h",
    "FaultReportedCritical": "5m",
    "UnknownFaultReported": "5m",
}
# Data older than this is stale: the textfile timer runs every minute, a scrape every 15-60 s.
STALE_AFTER_SECONDS = 15 * 60
# Virus definitions older than this alert (the plugin's --definitions-max-age default is the same);
# the host dashboard turns their age orange after DEFINITIONS_WARN_DAYS.
DEFINITIONS_MAX_AGE_DAYS = 7
DEFINITIONS_WARN_DAYS = 3

# The cloud exporter's rules (exporter/generate/cloud_rules.py): which series they read, and their limits.
CLOUD_SELECTOR = 'job="secure_endpoint_cloud"'
CLOUD_FOR = {
    "CloudExporterDown": "5m",
    "CloudPollFailing": "30m",  # a poll every 5 minutes: several failed in a row
    "CloudCredentialsRejected": "1m",
    "CloudSnapshotStale": "5m",
    "CloudRateLimited": "1m",
    "CloudComputerNotSeen": "15m",
    "CloudComputerCompromised": "1m",
    "CloudComputerFaults": "30m",
    "CloudFaultsRaised": "1m",
    "CloudVersionDrift": "6h",
    "HostNotSeenByCloud": "30m",
    "CloudMissesHostFaults": "30m",
}
# An active computer the cloud has not heard from for this long alerts (laptops stay off over a weekend).
CLOUD_NOT_SEEN_HOURS = 72
# A host the host exporter sees healthy and connected, silent in the cloud for this long, alerts (the join).
CLOUD_JOIN_SILENT_HOURS = 4
# Computers of one operating system on more connector versions than this alert (two: an update in progress).
CLOUD_VERSIONS_PER_OS = 2
# The fleet from the API is stale once this many poll intervals (the exporter's own figure) and the grace
# have passed without a good poll: 30 minutes at the default interval of 5.
CLOUD_STALE_POLLS = 3
CLOUD_STALE_GRACE_SECONDS = 15 * 60
# The dashboard's "seen within" counts.
CLOUD_LAST_SEEN_WITHIN = ("1h", "1d", "7d")
