"""fail2entra: counting, correlation, alerts, outputs and the command line."""

__version__ = "0.1.0"
