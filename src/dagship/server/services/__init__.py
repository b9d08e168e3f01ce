"""Server logic as plain functions: no HTTP, and sessions are committed by the caller."""
