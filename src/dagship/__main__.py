"""``python -m dagship``."""

from dagship.cli.main import main

raise SystemExit(main())
