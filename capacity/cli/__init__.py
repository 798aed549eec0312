"""`capacity serve | demo | import | keys | facilities | db | rebuild | coverage`: operator commands.

One module per domain, each with its Typer; this module only assembles them into `app` (the
`capacity` entry point). A module added without a name puts its commands at the top level, in
the order added: that order is the order `capacity --help` lists them.
"""

from __future__ import annotations

import typer

from capacity.cli import capabilities, coverage, db, demo, facilities, keys, rebuild, reports, serve
from capacity.cli.serve import server_options

__all__ = ["app", "server_options"]

app = typer.Typer(help="Real-time emergency capacity for the ROAZ regions.", no_args_is_help=True)
for commands in (serve, rebuild, capabilities, demo, reports, coverage):
    app.add_typer(commands.app)
app.add_typer(keys.app, name="keys")
app.add_typer(db.app, name="db")
app.add_typer(facilities.app, name="facilities")
