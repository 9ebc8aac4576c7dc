"""The version, defined once: pyproject.toml reads it, ``gradverify --version`` prints it."""

__version__ = "0.2.0"
