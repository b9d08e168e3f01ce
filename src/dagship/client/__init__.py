"""HTTP client for the dagship API: settings, requests, uploads, the deploy flow."""
