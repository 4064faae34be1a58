"""The Prometheus text format (0.0.4) for the one-shot mode: ``--once`` and node_exporter's textfiles.

prometheus_client writes this format too, and the server uses it; the one-shot
mode does not, because importing prometheus_client also imports its HTTP,
WSGI, TLS and e-mail stack (some 70 ms of a run started from cron every
minute) for what is thirty lines here. ``tests/test_exporter_wire.py`` holds
the two byte for byte equal.
"""

from __future__ import annotations

import math

from exporter.metrics import Family


def render(families: list[Family]) -> bytes:
    lines = []
    for family in families:
        name = f"{family.name}_info" if family.kind == "info" else family.name
        doc = family.doc.replace("\\", r"\\").replace("\n", r"\n")
        lines.append(f"# HELP {name} {doc}\n# TYPE {name} gauge\n")
        for values, value in family.samples:
            # Label names in order, as prometheus_client writes them (zip's strict= needs Python 3.10).
            pairs = sorted(zip(family.labels, values))
            labels = ",".join(f'{label}="{escape_label(text)}"' for label, text in pairs)
            lines.append(f"{name}{{{labels}}} {go_float(value)}\n" if labels else f"{name} {go_float(value)}\n")
    return "".join(lines).encode("utf-8")


def escape_label(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def go_float(value: float) -> str:
    """A float as Go (and so Prometheus and prometheus_client) writes it: 1.0, 1.7e+09, +Inf, NaN."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(float(value))
    dot = text.find(".")
    if value > 0 and dot > 6:  # Go switches to an exponent sooner than Python
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1:]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text
