"""Evidence: facts read from the host, one module per source, no verdicts."""
