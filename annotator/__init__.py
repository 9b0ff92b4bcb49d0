"""Services of ifl-studio: ingest, language ID, sampling, routing, storage (no UI imports)."""
