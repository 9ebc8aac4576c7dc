"""``python -m gradverify`` is the same as the ``gradverify`` command."""

from gradverify.cli import entrypoint

entrypoint()
