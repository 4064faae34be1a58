"""Prometheus exporter for Cisco Secure Endpoint connector health."""
