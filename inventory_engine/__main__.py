"""``python -m inventory_engine`` is the ``inventory-engine`` command."""

from inventory_engine.cli import app

app()
