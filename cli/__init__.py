"""The ``crowdwatch`` command line, one module per command group; no domain logic here."""
