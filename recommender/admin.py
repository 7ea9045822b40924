"""Django's admin autodiscovery imports this module; each area registers its own classes."""
from .apps import import_area_modules

import_area_modules("admin")
