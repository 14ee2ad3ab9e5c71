"""Shared helpers for fancy_env tests: real processes on loopback, no mocks."""
