"""``python -m plugin`` runs the fail2entra command."""

import sys

from .cli import main

sys.exit(main())
