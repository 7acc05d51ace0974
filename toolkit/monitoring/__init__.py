"""After the release: production logs read, measured against the release, and judged by the monitoring rules."""
