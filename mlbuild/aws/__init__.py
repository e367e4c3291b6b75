"""The one boundary to AWS: clients with the configured retries and timeouts, one error map."""
