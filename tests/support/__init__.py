"""Helpers and sample data shared by the integration and e2e tests (not tests themselves)."""
