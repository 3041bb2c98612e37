"""Test doubles shared across test suites: a reference container and a fault wrapper."""
