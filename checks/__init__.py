"""Host checks for the Cisco Secure Endpoint connector: fault catalogue, evidence, evaluation, Nagios plugin."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("secure-endpoint-monitoring")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
