"""Metric implementations. Each is checked in tests against an independent reference."""
