"""Who may do what to a follow-up task: the role policy, without a database.

Rights: an admin sees and acts on every task; staff and leads see their team's tasks.
Staff may take a task (assign it to themselves) but not give it to someone else or cancel
it; leads may do both within their team; admins everywhere. An action request is checked
here the way closure would check it, before it is published.

The policy reads staff users and tasks through the StaffMember and TeamTask protocols
(the StaffUser and FollowupTask tables have what they ask for).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from models.errors import CxloopError
from models.json_checks import NUL_MESSAGE, nul_path
from models.task_lifecycle import FINAL_STATUSES, ActionType, TaskStatus, allowed_actions

Role = Literal["staff", "lead", "admin"]
API_ACTOR = "api"  # the actor of actions sent with the global staff token
NOTE_MAX = 4000
FIX_TITLE_MAX = 200


class StaffMember(Protocol):
    """A staff user as far as rights go."""

    @property
    def username(self) -> str: ...

    @property
    def role(self) -> str: ...

    @property
    def team(self) -> str | None: ...

    @property
    def active(self) -> bool: ...


class TeamTask(Protocol):
    """A follow-up task as far as rights go: whose it is and where it stands."""

    @property
    def team(self) -> str: ...

    @property
    def status(self) -> str: ...


# --- rights ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Viewer:
    """Who is asking, as far as rights go."""

    username: str
    role: str
    team: str | None

    @classmethod
    def of(cls, user: StaffMember) -> Viewer:
        return cls(user.username, user.role, user.team)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def may_reassign(self) -> bool:
        return self.role in ("lead", "admin")

    def visible_teams(self) -> tuple[str, ...] | None:
        """The teams whose tasks this viewer sees; None for every team."""
        if self.is_admin:
            return None
        return (self.team,) if self.team else ()

    def can_see(self, task: TeamTask) -> bool:
        return self.is_admin or (self.team is not None and task.team == self.team)

    def can_act(
        self, task: TeamTask, action: ActionType, assignee: StaffMember | None = None
    ) -> bool:
        """Whether the role allows *action* on *task* (not whether its status does).
        An assign needs the *assignee*: staff may only take a task themselves, leads give
        it to an active member of their team, admins to anyone active in a team."""
        if not self.can_see(task):
            return False
        if action is ActionType.CANCEL:
            return self.may_reassign
        if action is ActionType.ASSIGN:
            return assignee is not None and self._may_give_to(assignee)
        return True

    def possible_actions(self, task: TeamTask) -> list[ActionType]:
        """What this viewer may do to *task* in its status now; assign when they may give
        it to anyone at all (to whom is checked once they name someone)."""

        def may(action: ActionType) -> bool:
            if action is ActionType.ASSIGN:
                return self.can_see(task) and (self.is_admin or self.team is not None)
            return self.can_act(task, action)

        return [a for a in allowed_actions(TaskStatus(task.status)) if may(a)]

    def _may_give_to(self, assignee: StaffMember) -> bool:
        if not assignee.active or assignee.team is None or assignee.role == "admin":
            return False
        if self.is_admin:
            return True
        if self.role == "lead":
            return assignee.team == self.team
        return assignee.username == self.username and assignee.team == self.team


# --- action requests ---------------------------------------------------------------------


class ActionRequestInvalidError(CxloopError):
    """Why an action request is not accepted: *status* 403, 409 or 422, a stable *code*
    and a message per field."""

    def __init__(self, status: int, code: str, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.fields = dict(fields or {})


@dataclass(frozen=True)
class ActionRequest:
    """An action as it will be published: checked type, note and details."""

    type: ActionType
    note: str
    details: dict[str, Any]


# Which details each action takes; any other key is a mistake worth telling the caller.
_DETAIL_KEYS: dict[ActionType, frozenset[str]] = {
    ActionType.ASSIGN: frozenset({"assignee"}),
    ActionType.CLOSE: frozenset(
        {"root_cause", "needs_structural_fix", "structural_fix_id", "structural_fix_title"}
    ),
}
# Actions that say nothing without a note.
_NOTE_REQUIRED = {
    ActionType.RESOLVED: "say what was done about the cause",
    ActionType.CUSTOMER_INFORMED: "say what the customer was told",
    ActionType.CANCEL: "say why no follow-up is needed",
    ActionType.NOTE: "write the note",
}


def parse_action_type(value: object) -> ActionType:
    """The action type named by *value*; ActionRequestInvalidError 422 otherwise."""
    try:
        return ActionType(str(value))
    except ValueError:
        names = [a.value for a in ActionType]
        raise ActionRequestInvalidError(
            422, "invalid", {"type": f"must be one of {names}"}
        ) from None


def vet_action(
    viewer: Viewer,
    task: TeamTask,
    action: ActionType,
    note: object,
    details: object,
    *,
    root_causes: Collection[str],
    assignee: StaffMember | None = None,
    fix_ids: Collection[str] = (),
) -> ActionRequest:
    """Check an action request the way closure would, before it is published: rights (403),
    the task's status (409), then the note and details (422). *assignee* is the user named
    in details.assignee (None when unknown); *fix_ids* the structural fixes that exist."""
    if not viewer.can_see(task):
        raise ActionRequestInvalidError(403, "forbidden")
    where = nul_path({"note": note, "details": details})
    if where is not None:  # no database column can keep one: refused before anything else
        raise ActionRequestInvalidError(422, "invalid", {where: NUL_MESSAGE})
    if action is not ActionType.ASSIGN and not viewer.can_act(task, action):
        raise ActionRequestInvalidError(
            403, "forbidden", {"type": f"your role may not {action.value}"}
        )
    fields: dict[str, str] = {}
    if not isinstance(details, Mapping):
        fields["details"] = "must be an object"
        details = {}
    clean: dict[str, Any] = {}
    if action is ActionType.ASSIGN:  # rights first: 403 before 409
        clean = _assign_details(viewer, task, details, assignee, fields)
    status = TaskStatus(task.status)
    if status in FINAL_STATUSES:
        raise ActionRequestInvalidError(409, "task_closed")
    if action not in allowed_actions(status):
        raise ActionRequestInvalidError(
            409, "not_possible_now", {"type": f"not possible while the task is {status.value}"}
        )
    if not isinstance(note, str) or len(note) > NOTE_MAX:
        fields["note"] = f"must be text of at most {NOTE_MAX} characters"
        note = ""
    text = note.strip()
    if action in _NOTE_REQUIRED and not text:
        fields["note"] = _NOTE_REQUIRED[action]
    unknown = sorted(set(details) - _DETAIL_KEYS.get(action, frozenset()))
    if unknown:
        fields["details"] = f"{action.value} takes no {', '.join(map(str, unknown))}"
    if action is ActionType.CLOSE:
        clean = _close_details(details, root_causes, fix_ids, fields)
    if fields:
        raise ActionRequestInvalidError(422, "invalid", fields)
    return ActionRequest(action, text, clean)


def _assign_details(
    viewer: Viewer,
    task: TeamTask,
    details: Mapping[str, Any],
    assignee: StaffMember | None,
    fields: dict[str, str],
) -> dict[str, Any]:
    name = details.get("assignee")
    if not isinstance(name, str) or not name.strip():
        fields["assignee"] = "choose who gets the task"
        return {}
    if assignee is None or not assignee.active or assignee.team is None:
        if viewer.role == "staff" and name.strip().lower() != viewer.username:
            raise ActionRequestInvalidError(
                403, "forbidden", {"assignee": "you can only take a task"}
            )
        fields["assignee"] = "not an active member of a team"
        return {}
    if not viewer.can_act(task, ActionType.ASSIGN, assignee):
        why = "you can only take a task" if viewer.role == "staff" else "not in your team"
        raise ActionRequestInvalidError(403, "forbidden", {"assignee": why})
    return {"assignee": assignee.username}


def _close_details(
    details: Mapping[str, Any],
    root_causes: Collection[str],
    fix_ids: Collection[str],
    fields: dict[str, str],
) -> dict[str, Any]:
    cause = details.get("root_cause")
    if cause not in root_causes:
        fields["root_cause"] = "choose the root cause"
    needs = details.get("needs_structural_fix", False)
    if not isinstance(needs, bool):
        fields["needs_structural_fix"] = "must be true or false"
        needs = False
    fix_id = details.get("structural_fix_id") or None
    title = details.get("structural_fix_title") or ""
    if fix_id is not None and (not isinstance(fix_id, str) or fix_id not in fix_ids):
        fields["structural_fix_id"] = "no such structural fix"
    if not isinstance(title, str) or len(title.strip()) > FIX_TITLE_MAX:
        fields["structural_fix_title"] = f"must be text of at most {FIX_TITLE_MAX} characters"
        title = ""
    title = title.strip()
    if fix_id and title:
        fields["structural_fix_title"] = "choose an existing fix or name a new one, not both"
    if (fix_id or title) and not needs:
        needs = True  # linking a fix says a structural fix is needed
    clean: dict[str, Any] = {"root_cause": cause, "needs_structural_fix": needs}
    if fix_id:
        clean["structural_fix_id"] = fix_id
    elif title:
        clean["structural_fix_title"] = title
    return clean
