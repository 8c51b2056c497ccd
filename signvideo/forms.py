"""HTML forms described once: each field's label, hint and rules, read from a
posted form with an error in plain words for each field that is wrong, and
rendered by the `form_fields` macro (web/templates/_forms.html)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

Value = str | int | bool | list[str] | dt.date | None


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    # text, email, number, date, select, radios (a yes/no or few choices),
    # checkboxes (any number of choices)
    kind: str = "text"
    hint: str = ""
    required: bool = True
    choices: Sequence[tuple[str, str]] = ()
    minimum: int | None = None
    maximum: int | None = None
    max_length: int = 200
    # A pattern the text must match, and how to say what it must look like.
    pattern: str | None = None
    pattern_words: str = ""
    autocomplete: str = "off"
    # Class names for the input (a narrower box for numbers, say).
    width: str = ""

    @property
    def id(self) -> str:
        return self.name.replace("_", "-")


@dataclass
class Form:
    fields: Sequence[Field]
    values: dict[str, Value] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def shown(self, name: str) -> str:
        """A value as the form shows it back."""
        value = self.values.get(name)
        if value is None:
            return ""
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, dt.date):
            return value.isoformat()
        return str(value)

    def chosen(self, name: str, choice: str) -> bool:
        value = self.values.get(name)
        if isinstance(value, list):
            return choice in value
        if isinstance(value, bool):
            return choice == ("yes" if value else "no")
        return value is not None and str(value) == choice

    @property
    def ok(self) -> bool:
        return not self.errors


def is_email(text: str) -> bool:
    """Shaped like an email address (the one check the forms make)."""
    return re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text) is not None


def read(fields: Sequence[Field], posted: MultiDictProxy[Any] | Mapping[str, Any]) -> Form:
    """Check each field of a posted form; every problem found, not just the first."""
    form = Form(fields)
    for f in fields:
        if f.kind == "checkboxes":
            raw_list = posted.getall(f.name, []) if isinstance(posted, MultiDictProxy) else []
            picked = [v for v in raw_list if isinstance(v, str)]
            allowed = {value for value, _ in f.choices}
            form.values[f.name] = [v for v in picked if v in allowed]
            if any(v not in allowed for v in picked):
                form.errors[f.name] = f"Choose {f.label.lower()} from the list."
            elif f.required and not form.values[f.name]:
                form.errors[f.name] = f"Choose at least one of the {f.label.lower()}."
            continue
        raw = posted.get(f.name)
        text = raw.strip() if isinstance(raw, str) else ""
        form.values[f.name] = text
        if not text:
            if f.required:
                verb = "Choose" if f.kind in ("select", "radios") else "Enter"
                form.errors[f.name] = f"{verb} {_lower_first(f.label)}."
            else:
                form.values[f.name] = None
            continue
        error = _check(f, text, form)
        if error:
            form.errors[f.name] = error
    return form


def _lower_first(label: str) -> str:
    return label[:1].lower() + label[1:]


def _check(f: Field, text: str, form: Form) -> str | None:
    what = _lower_first(f.label)
    if len(text) > f.max_length:
        return f"{f.label} must be {f.max_length} characters or fewer."
    if f.kind == "number":
        if not re.fullmatch(r"-?\d{1,9}", text):
            return f"{f.label} must be a whole number, like {f.minimum or 0}."
        number = int(text)
        if f.minimum is not None and number < f.minimum:
            return f"{f.label} must be {f.minimum} or more."
        if f.maximum is not None and number > f.maximum:
            return f"{f.label} must be {f.maximum} or less."
        form.values[f.name] = number
    elif f.kind == "date":
        try:
            form.values[f.name] = dt.date.fromisoformat(text)
        except ValueError:
            return f"{f.label} must be a real date, like 2027-03-31."
    elif f.kind in ("select", "radios"):
        allowed = {value for value, _ in f.choices}
        if text not in allowed:
            return f"Choose {what} from the list."
        if {"yes", "no"} == allowed:
            form.values[f.name] = text == "yes"
    elif f.kind == "email":
        text = text.lower()
        form.values[f.name] = text
        if not is_email(text):
            return f"{f.label} must be an email address, like name@council.gov.uk."
    value = form.values[f.name]
    if f.pattern is not None and isinstance(value, str) and not re.fullmatch(f.pattern, value):
        return f"{f.label} {f.pattern_words}."
    return None


YES_NO = (("yes", "Yes"), ("no", "No"))


def path_id(request: web.Request, key: str, missing: str) -> int:
    """A row's number from the address (like /admin/users/12); 404 with
    `missing` when it is not a number that could be one."""
    text = request.match_info[key]
    if not text.isdigit() or len(text) > 18:
        raise web.HTTPNotFound(text=missing)
    return int(text)
