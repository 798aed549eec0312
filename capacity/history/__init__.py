"""The SQL record: event log, history, audit, and keeping Redis and SQL in step."""
