"""Emulated bench units (IBU-1, MT-SICS balance) behind ``ionto emulate`` and the tests."""
