"""``python -m cellfrontier`` is the ``cellfrontier`` command."""

from cellfrontier.cli import main

raise SystemExit(main())
