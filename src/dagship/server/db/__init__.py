"""The server's database: models, engine and migrations."""
