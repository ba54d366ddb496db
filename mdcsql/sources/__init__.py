"""Event sources: anything that yields canonical event dicts for a writer."""
