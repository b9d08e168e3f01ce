"""dagship and the systems around it: CI systems (branch detection, pipeline templates)."""
