"""Generating answers: the service, its two backends and everything around one request
(parameters, prompt fitting, retries, the cache, output checks, logs and metrics)."""
