#!/usr/bin/env python
"""Django's command-line utility: run_ingestor, run_engine, normalize, replay, ...

A configuration error (a malformed setting, a venue that lists none of the configured
markets) ends the command with its message and exit code 78 (`arbsite.runtime.CONFIG_ERROR_EXIT`),
which tells the supervisor not to restart it.
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbsite.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        from arbsite.runtime import CONFIG_ERROR_EXIT

        sys.stderr.write(f"configuration error: {exc}\n")
        sys.exit(CONFIG_ERROR_EXIT)


if __name__ == "__main__":
    main()
