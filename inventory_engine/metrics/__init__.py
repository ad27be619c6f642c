"""Prometheus metrics: what is exported (definitions), how processes record it (recorder, in
Redis), and the scrape (collector)."""
