"""``python -m cellfrontier`` is the ``cellfrontier`` command."""

from cellfrontier.simulate.cli import main

raise SystemExit(main())
