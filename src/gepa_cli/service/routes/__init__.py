"""The service's routers: runs (submit, inspect, control, stream), results, operations."""
