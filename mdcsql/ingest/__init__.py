"""Crash-safe ingest: write-ahead log, partition files, sealing and recovery."""
