"""Container healthcheck: exit 0 when URL answers 200 (or a status given with --accept), else 1.

The image is python:3.11-slim, which has no curl; docker-compose.yml runs this instead:

    python scripts/healthcheck.py http://127.0.0.1:8080/health
    python scripts/healthcheck.py http://127.0.0.1:3000/api/health --accept 503

Standard library only, no Django: a healthcheck runs every few seconds and must stay cheap.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request


def check(url: str, accept: set[int], timeout_s: float) -> tuple[bool, str]:
    """(healthy, what to print) for one request."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            status = int(response.status)
    except urllib.error.HTTPError as error:
        status = error.code
    except (urllib.error.URLError, OSError) as error:
        return False, f"{url}: no answer ({error})"
    return status == 200 or status in accept, f"{url}: {status}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("url")
    parser.add_argument("--accept", type=int, action="append", default=[], help="another status that counts as up")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds (3)")
    options = parser.parse_args(argv)
    healthy, message = check(options.url, set(options.accept), options.timeout)
    print(message, file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())
