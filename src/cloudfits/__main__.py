"""``python -m cloudfits``: the ``cloudfits`` command."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
