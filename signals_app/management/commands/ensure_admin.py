"""`manage.py ensure_admin`: the admin user `admin` from ADMIN_PASSWORD, or how to make one."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create or update the superuser 'admin' with ADMIN_PASSWORD; without it, say how to create one."

    def handle(self, *args: Any, **options: Any) -> None:
        password = settings.ADMIN_PASSWORD
        users = get_user_model()
        if not password:
            if not users.objects.filter(is_superuser=True).exists():
                self.stdout.write(
                    "No admin user: set ADMIN_PASSWORD (in .env or the environment) and `make run` creates "
                    "'admin', or run `.venv/bin/python manage.py createsuperuser`."
                )
            return
        user, created = users.objects.get_or_create(username="admin", defaults={"is_staff": True})
        user.is_staff = True
        user.is_superuser = True
        user.set_password(password)
        user.save()
        self.stdout.write(f"admin user 'admin' {'created' if created else 'updated'} from ADMIN_PASSWORD")
