"""Services of ifl-studio, one subpackage per capability (ingest, design, annotation, access,
analysis, demo) beside the CLI, storage, languages and error lists. No UI imports."""
