"""Bench capture driver: serial transport, protocol codecs, device APIs, capture loops, emulators.

Layers (each testable alone):

- ``transport``: bytes over a pyserial URL (device path, ``loop://``, ``socket://``, a pty),
  exclusive open, a timeout on every read and write, reopen with backoff and re-discovery;
- ``ibu_codec`` / ``mtsics``: pure parse/format functions for the IBU-1 line protocol and the
  MT-SICS subset;
- ``ibu_device`` / ``balance_device``: device APIs on a transport;
- ``ibu_capture`` / ``balance_capture``: the capture loops behind ``ionto capture``;
- ``emulators``: emulated units behind ``ionto emulate`` (also the tests' devices).

Nothing here imports Dagster: the driver runs alone on a clinic PC.
"""
