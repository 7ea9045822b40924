from __future__ import annotations

import os
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

DEMO_SLUG = "clothing"


class Command(BaseCommand):
    help = "Create the demo admin and import demo garments (idempotent: safe to run on every start)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--shared", type=Path, default=Path("../shared"))
        parser.add_argument("--per-label", type=int, default=int(os.environ.get("STYLESITE_DEMO_PER_LABEL", 20)),
                            help="Garments per (split, label) to import; 0 imports all 3,781.")

    def handle(self, *args, shared: Path, per_label: int, **options) -> None:
        user_model = get_user_model()
        password = os.environ.get("STYLESITE_DEMO_ADMIN_PASSWORD", "stylesite-admin")
        if not user_model.objects.filter(username="admin").exists():
            user_model.objects.create_superuser("admin", "admin@example.com", password)
            self.stdout.write(f"Created the demo admin: username 'admin', password '{password}'.")
        else:
            self.stdout.write("Demo admin exists: username 'admin' (password as first printed).")
        source = shared / "data" / "clothing-small"
        if not source.is_dir():
            self.stdout.write(self.style.WARNING(f"{source} not found: no demo garments imported."))
            return
        call_command("import_catalog", str(source), collection=DEMO_SLUG, layout="folders",
                     name="Clothing (demo)", limit_per_label=per_label, stdout=self.stdout, stderr=self.stderr)
        if per_label:
            self.stdout.write(f"Imported up to {per_label} garments per split and label. For all of them: "
                              f".venv/bin/python manage.py import_catalog {source} --collection {DEMO_SLUG}")
