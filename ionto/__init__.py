"""The application: the ``ionto`` command line, above every other package; nothing imports it."""
