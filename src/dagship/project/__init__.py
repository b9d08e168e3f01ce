"""The project on disk: layout, ignore rules, manifests, git metadata."""
