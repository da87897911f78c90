# Integration tests: the real submitd and submitctl driven by real SMTP clients (harness.py).
# This file makes the directory a package, which `unittest discover -s tests/integration -t .`
# requires.
