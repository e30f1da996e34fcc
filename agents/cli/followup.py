"""`cxloop followup check FILE`: validate follow-up rules and show what they do."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from models.followup_rules import FollowupRulesError, load_followup_rules

app = typer.Typer(help="Follow-up rules: which answers open tasks, teams, SLA, escalation.")


@app.command()
def check(
    file: Annotated[
        Path | None, typer.Argument(help="Rules file; none = the shipped default.")
    ] = None,
) -> None:
    """Validate a follow-up rules file (errors name the line) and list its teams and routes."""
    try:
        rules = load_followup_rules(file)
    except FollowupRulesError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    console = Console()
    sla = rules.sla
    console.print(f"{rules.source}: valid")
    console.print(f"version  {rules.version}")
    console.print(
        f"SLA      first contact {sla.first_contact}, closure {sla.closure}; reminder at "
        f"{sla.reminder_at:.0%}, lead at {sla.lead_at:.0%}, manager at {sla.manager_at:.0%}"
        f"{', by e-mail' if sla.email else ''}"
    )
    tasks = rules.tasks
    console.print(
        f"tasks    NPS ≤ {tasks.nps_detractor_max}, CSAT ≤ {tasks.csat_max}, CES ≤ "
        f"{tasks.ces_max}, complaints {'yes' if tasks.complaints else 'no'}; unreachable after "
        f"{tasks.unreachable_after} failed calls"
    )
    teams = Table(title="teams")
    for column in ("team", "time zone", "hours", "holidays", "assignment", "first contact"):
        teams.add_column(column)
    for team in rules.teams.values():
        teams.add_row(
            team.name,
            team.timezone,
            f"{team.days if isinstance(team.days, str) else ','.join(team.days)} "
            f"{team.from_}–{team.to}",
            str(len(team.holidays)),
            team.assignment,
            str(rules.sla_amount("first_contact", team.name)),
        )
    console.print(teams)
    routes = Table(title="routes (first match wins)")
    routes.add_column("team")
    routes.add_column("when")
    for route in rules.spec.route:
        routes.add_row(route.team, str(route.when.model_dump(exclude_none=True)))
    routes.add_row(rules.spec.routing.default_team, "(default)")
    console.print(routes)
    for hook in rules.webhooks:
        console.print(
            f"webhook  {hook.name}: events {hook.events or 'all'}, secret ${hook.secret_env}"
        )
