"""Host checks for the Cisco Secure Endpoint connector: fault catalogue, evidence, evaluation, Nagios plugin."""

if __name__ != "secure_endpoint_monitoring.checks":  # a checkout's folder imported by its own name
    raise ImportError("import secure_endpoint_monitoring.checks, not checks: a second copy of every module "
                      "would load beside the installed one")

# Kept here, not read from package metadata at run time: importlib.metadata
# costs the plugin tens of milliseconds on every run.
__version__ = "0.1.0"
