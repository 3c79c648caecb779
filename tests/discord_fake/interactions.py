"""INTERACTION_CREATE payloads, built the way a Discord client would for a slash command, autocomplete or click."""

from __future__ import annotations

from typing import Any

from .httpio import invalid_form
from .state import ADMINISTRATOR, FakeChannel, FakeGuild, FakeMember, FakeRole, InteractionRecord, Payload
from .uploads import ATTACHMENT_SIZE_LIMIT, HostedAttachment

SCALAR_TYPES: dict[int, tuple[type, ...]] = {3: (str,), 4: (int,), 5: (bool,), 10: (int, float)}
SUBCOMMAND_TYPES = (1, 2)
ATTACHMENT = 11
MAX_CHOICES = 25


class PermissionRefused(Exception):
    """The member lacks the command's default_member_permissions, so Discord would not let them run it."""


class UnknownCommand(LookupError):
    """No synced command (or subcommand) of that name."""


def check_permissions(command: Payload, member: FakeMember) -> None:
    """Raise PermissionRefused unless `member` may use `command` by default (Administrator bypasses)."""
    raw = command.get("default_member_permissions")
    if raw is None:
        return
    required, perms = int(raw), member.permissions
    if perms & ADMINISTRATOR:
        return
    if required == 0 or required & ~perms:
        raise PermissionRefused(
            f"{member.user.username} (permissions {perms:#x}) cannot use /{command['name']}: "
            f"default_member_permissions={raw}; pass override_permissions=True to simulate a guild override"
        )


def command_data(command: Payload, path: list[str], values: dict[str, Any], member: FakeMember) -> Payload:
    """The interaction `data` for `/<path...>` with option `values` typed by the synced schema."""
    data, node, schema = _command_node(command, path)
    resolved: Payload = {}
    node["options"] = [_option(spec, values[spec["name"]], resolved, member) for spec in _matched(schema, values)]
    if resolved:
        data["resolved"] = resolved
    return data


def autocomplete_data(
    command: Payload, path: list[str], values: dict[str, Any], focused: str, member: FakeMember
) -> tuple[Payload, Payload]:
    """The autocomplete `data` for `/<path...>` and the focused option's schema.

    `values[focused]` is the text typed so far; the other options may be incomplete (required ones
    missing) and, as on Discord, nothing is resolved.
    """
    data, node, schema = _command_node(command, path)
    focused_spec = _autocompleted(schema, focused, values.get(focused))
    node["options"] = [
        {"name": focused, "type": spec["type"], "value": values[focused], "focused": True}
        if spec is focused_spec
        else _option(spec, values[spec["name"]], {}, member)
        for spec in _matched(schema, values, partial=True)
    ]
    return data, focused_spec


def check_choices(choices: Any, option: Payload) -> None:
    """Refuse an autocomplete result as Discord does (400 Invalid Form Body).

    At most 25 choices, names of 1-100 characters, values of the option's type (strings up to 100).
    """
    if not isinstance(choices, list):
        raise invalid_form("data.choices", "This field is required")
    if len(choices) > MAX_CHOICES:
        raise invalid_form("data.choices", f"Must be {MAX_CHOICES} or fewer in length.")
    kind = option["type"]
    for i, choice in enumerate(choices):
        name, value = choice.get("name"), choice.get("value")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            raise invalid_form(f"data.choices.{i}.name", "Must be between 1 and 100 in length.")
        if not _fits(kind, value):
            raise invalid_form(f"data.choices.{i}.value", f"Must be a value of option type {kind}.")
        if kind == 3 and len(value) > 100:
            raise invalid_form(f"data.choices.{i}.value", "Must be 100 or fewer in length.")


def _command_node(command: Payload, path: list[str]) -> tuple[Payload, Payload, list[Payload]]:
    """The `data` skeleton, the (sub)command node that takes the options, and their schema."""
    data: Payload = {"id": command["id"], "name": command["name"], "type": command.get("type", 1)}
    if command.get("guild_id"):
        data["guild_id"] = command["guild_id"]
    node, schema = data, command.get("options") or []
    for name in path[1:]:
        spec = next((o for o in schema if o["name"] == name and o["type"] in SUBCOMMAND_TYPES), None)
        if spec is None:
            raise UnknownCommand(f"/{' '.join(path)}: no subcommand {name!r}")
        child: Payload = {"name": name, "type": spec["type"]}
        node["options"] = [child]
        node, schema = child, spec.get("options") or []
    return data, node, schema


def _matched(schema: list[Payload], values: dict[str, Any], *, partial: bool = False) -> list[Payload]:
    """The schema of each given option, refusing unknown ones (and missing required ones unless `partial`)."""
    names = {o["name"] for o in schema}
    unknown = values.keys() - names
    missing = [] if partial else [o["name"] for o in schema if o.get("required") and o["name"] not in values]
    if unknown or missing:
        raise ValueError(f"options do not fit the synced schema: unknown={sorted(unknown)} missing={missing}")
    return [o for o in schema if o["name"] in values]


def _autocompleted(schema: list[Payload], name: str, text: Any) -> Payload:
    """The schema of the option being typed into; Discord only autocompletes `autocomplete: true` options."""
    spec = next((o for o in schema if o["name"] == name), None)
    if spec is None or not spec.get("autocomplete"):
        raise ValueError(f"option {name!r} is not declared with autocomplete: true, so Discord cannot autocomplete it")
    if not isinstance(text, str):
        raise TypeError(f"the focused option {name!r} takes the text typed so far (a str), got {text!r}")
    return spec


def _option(spec: Payload, value: Any, resolved: Payload, member: FakeMember) -> Payload:
    kind = spec["type"]
    if kind in SCALAR_TYPES:
        _check_scalar(spec, value)
        raw = value
    else:
        _resolve(kind, value, resolved, member)
        raw = str(value.id)
    return {"name": spec["name"], "type": kind, "value": raw}


def _check_scalar(spec: Payload, value: Any) -> None:
    """Refuse what the Discord client's option picker would not let a user enter."""
    kind, name = spec["type"], spec["name"]
    if not _fits(kind, value):
        raise TypeError(f"option {name!r} has Discord type {kind}, got {value!r}")
    choices = [c["value"] for c in spec.get("choices") or []]
    if choices and value not in choices:
        raise ValueError(f"option {name!r} must be one of {choices}")
    size = len(value) if kind == 3 else value
    low = spec.get("min_length" if kind == 3 else "min_value")
    high = spec.get("max_length" if kind == 3 else "max_value")
    if (low is not None and size < low) or (high is not None and size > high):
        raise ValueError(f"option {name!r}={value!r} is outside [{low}, {high}]")


def _fits(kind: int, value: Any) -> bool:
    """Whether `value` has the Python type of scalar option type `kind` (bool is not an int here)."""
    return isinstance(value, SCALAR_TYPES[kind]) and (kind == 5 or not isinstance(value, bool))


def _resolve(kind: int, value: Any, resolved: Payload, member: FakeMember) -> None:
    if isinstance(value, FakeMember) and kind in (6, 9):
        resolved.setdefault("users", {})[str(value.id)] = value.user.payload()
        partial = {**value.payload(with_user=False), "permissions": str(value.permissions)}
        resolved.setdefault("members", {})[str(value.id)] = partial
    elif isinstance(value, FakeRole) and kind in (8, 9):
        resolved.setdefault("roles", {})[str(value.id)] = value.payload()
    elif isinstance(value, FakeChannel) and kind == 7:
        channel = {**value.payload(), "permissions": str(member.permissions)}
        resolved.setdefault("channels", {})[str(value.id)] = channel
    elif isinstance(value, HostedAttachment) and kind == ATTACHMENT:
        resolved.setdefault("attachments", {})[str(value.id)] = value.payload()
    else:
        raise TypeError(f"cannot pass {value!r} as an option of Discord type {kind}")


def component_type(message: Payload, custom_id: str) -> int:
    """The type of the enabled component with `custom_id` on `message` (LookupError if absent)."""
    stack = list(message.get("components") or [])
    while stack:
        component = stack.pop()
        if component.get("custom_id") == custom_id and not component.get("disabled"):
            return component["type"]
        stack.extend(component.get("components") or [])
        if "accessory" in component:
            stack.append(component["accessory"])
    raise LookupError(f"message {message['id']} has no enabled component {custom_id!r}")


def interaction_payload(
    record: InteractionRecord,
    *,
    application_id: int,
    guild: FakeGuild,
    channel: FakeChannel,
    member: FakeMember,
    data: Payload,
) -> Payload:
    """The INTERACTION_CREATE event for `record`."""
    perms = str(member.permissions)
    bot = guild.members[application_id]
    payload: Payload = {
        "id": str(record.id),
        "application_id": str(application_id),
        "type": record.type,
        "data": data,
        "guild_id": str(guild.id),
        "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
        "channel_id": str(channel.id),
        "channel": {**channel.payload(), "permissions": perms},
        "member": {**member.payload(), "permissions": perms},
        "token": record.token,
        "version": 1,
        "app_permissions": str(bot.permissions),
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "entitlement_sku_ids": [],
        "authorizing_integration_owners": {"0": str(guild.id)},
        "context": 0,
        "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
    }
    if record.message is not None:
        payload["message"] = record.message
    return payload
