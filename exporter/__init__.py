"""Prometheus exporter for Cisco Secure Endpoint connector health."""

if __name__ != "secure_endpoint_monitoring.exporter":  # a checkout's folder imported by its own name
    raise ImportError("import secure_endpoint_monitoring.exporter, not exporter: a second copy of every module "
                      "would load beside the installed one")
