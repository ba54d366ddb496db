"""Lifecycle: policies, tiers, retention, quotas, compaction, WORM, legal holds, removal."""
