"""``python -m cloudfits``: the ``cloudfits`` command."""

from __future__ import annotations

from .cli.main import main

raise SystemExit(main())
