"""The ``cellfrontier`` command's job subcommands: ``run`` and ``status``.

``cellfrontier.cli`` builds the command line from them (and from ``cellfrontier.simulate``);
each module here adds its subcommand's parser and handles it.  They use the job's public API,
its status reader (:mod:`cellfrontier.job.store.status_reader`) and the cut of a job into shards that a
cluster run uses, and print; nothing else imports them.
"""
