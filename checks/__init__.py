"""Host checks for the Cisco Secure Endpoint connector: fault catalogue, evidence, evaluation, Nagios plugin."""

# Kept here, not read from package metadata at run time: importlib.metadata
# costs the plugin tens of milliseconds on every run.
__version__ = "0.1.0"
