"""``python -m services.tagger [--role consumer|api|jobs ...]``: run the tagger's roles.

Without ``--role`` the roles come from ``ORDERTAG_TAGGER_ROLES`` (all of them by default).
Every process serves ``/healthz``, ``/readyz`` and ``/metrics``; the Tag API only with ``api``.
"""

import argparse

from services.tagger.app import create_app
from services.tagger.settings import TaggerSettings, parse_roles
from shared.serve import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.tagger", description=__doc__)
    parser.add_argument(
        "--role",
        action="append",
        metavar="ROLE",
        help="consumer, api, jobs or all; repeat it or give a comma list (default: all)",
    )
    args = parser.parse_args(argv)
    settings = TaggerSettings()
    if args.role:
        try:
            settings = settings.model_copy(update={"tagger_roles": parse_roles(args.role)})
        except ValueError as error:
            parser.error(str(error))
    serve(create_app, settings, settings.tagger_host, settings.tagger_port)


if __name__ == "__main__":
    main()
