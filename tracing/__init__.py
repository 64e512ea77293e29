"""Spans of every node, agent call and LLM request, their OpenTelemetry export, and the run directory store."""
