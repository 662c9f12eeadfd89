"""The scan configuration form: its fields, their checks, and the ScanConfig document they make.

The form has the original's four steps (general, scan types, time, advanced).
It reads from and writes to a ScanConfig document; fields the form does not
show (scanner lists, timeouts, annotations...) are kept from the stored one.
"""

import copy
import datetime
from dataclasses import dataclass, field

from croniter import croniter, CroniterBadCronError

from app.ui import scope_builder
from app.ui.asset_scans_queries import FAMILY_LABELS, SHOWN_FAMILIES
from app.ui.scope_builder import ScopeError

#: (ScanFamiliesConfig key, label) in the order the form shows them.
FAMILY_CHOICES = tuple((family.api_key, FAMILY_LABELS[family.api_key]) for family in SHOWN_FAMILIES)
DEFAULT_FAMILIES = frozenset({"sbom", "vulnerabilities"})
CRON_PRESETS = (("0 */12 * * *", "Every 12 hours"), ("0 0 * * *", "Daily at midnight"),
                ("0 0 * * 5", "Weekly, Fridays at midnight"))
TIME_MODES = ("now", "at", "cron", "keep")
DEFAULT_MAX_PARALLEL = 2
LOCAL_MINUTE = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def rfc3339(moment):
    return moment.isoformat().replace("+00:00", "Z")


def parse_time(text):
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None


@dataclass
class ScanConfigForm:
    name: str = ""
    rows: list = field(default_factory=lambda: [scope_builder.Row()])
    scope_raw: str | None = None   # set when the scope is kept as OData text, not rows
    families: set = field(default_factory=lambda: set(DEFAULT_FAMILIES))
    time_mode: str = "now"
    at_time: str = ""
    cron_preset: str = CRON_PRESETS[1][0]
    cron_custom: str = ""
    max_parallel: str = str(DEFAULT_MAX_PARALLEL)
    spot: bool = False
    revision: str = ""
    kept_schedule: dict | None = None  # the stored schedule, offered as "keep" when editing

    @classmethod
    def from_form(cls, form, kept_schedule=None):
        """The form as the browser sent it (a MultiDict)."""
        raw = form.get("scope_raw")
        rows = scope_builder.rows_from_form(form)
        return cls(
            name=form.get("name", ""), rows=rows, scope_raw=raw,
            families={key for key, _ in FAMILY_CHOICES if form.get(f"family_{key}")},
            time_mode=form.get("time_mode", "now"), at_time=form.get("at_time", ""),
            cron_preset=form.get("cron_preset", ""), cron_custom=form.get("cron_custom", ""),
            max_parallel=form.get("max_parallel", ""), spot=bool(form.get("spot")),
            revision=form.get("revision", ""), kept_schedule=kept_schedule)

    @classmethod
    def from_document(cls, document, duplicate=False):
        """The form showing a stored config: for editing it, or prefilled for a copy."""
        template = document.get("scanTemplate") or {}
        families_config = (template.get("assetScanTemplate") or {}).get("scanFamiliesConfig") or {}
        instance = (template.get("assetScanTemplate") or {}).get("scannerInstanceCreationConfig") or {}
        scope = template.get("scope") or ""
        rows = scope_builder.from_odata(scope)  # None: the builder cannot show it, keep it as text
        form = cls(
            name=f"{document.get('name', '')} copy" if duplicate else document.get("name", ""),
            rows=[scope_builder.Row()] if not rows else rows,
            scope_raw=None if rows is not None else scope,
            families={key for key, _ in FAMILY_CHOICES if (families_config.get(key) or {}).get("enabled")},
            max_parallel=str(template.get("maxParallelScanners") or DEFAULT_MAX_PARALLEL),
            spot=bool(instance.get("useSpotInstances")),
            revision="" if duplicate else str(document.get("revision", "")),
            kept_schedule=None if duplicate else document.get("scheduled"))
        form._show_schedule(document.get("scheduled") or {})
        return form

    def _show_schedule(self, scheduled):
        cron_line = scheduled.get("cronLine")
        if cron_line:
            presets = [line for line, _ in CRON_PRESETS]
            self.cron_preset = cron_line if cron_line in presets else "custom"
            self.cron_custom = "" if cron_line in presets else cron_line
        at = parse_time(scheduled.get("operationTime"))
        if at is not None and at > utc_now():
            self.at_time = at.astimezone(datetime.timezone.utc).strftime(LOCAL_MINUTE)
        if self.kept_schedule:
            self.time_mode = "keep"
        else:
            self.time_mode = "cron" if cron_line else "at" if self.at_time else "now"

    @property
    def scope_is_raw(self):
        return self.scope_raw is not None

    def scope(self):
        """The OData scope the form holds; raises ScopeError for a row that makes no sense."""
        return self.scope_raw.strip() if self.scope_is_raw else scope_builder.to_odata(self.rows)

    def apply_scope_action(self, action):
        """Change the builder's rows, for htmx and for browsers without it; True if `action` was one.

        "add" a row, "remove:<n>" row n, "or:<n>" add a value to row n, "drop:<n>:<k>" its value k.
        """
        verb, _, where = (action or "").partition(":")
        numbers = [int(part) for part in where.split(":") if part.isdigit()]
        if verb == "add" and not where:
            self.rows.append(scope_builder.Row())
        elif verb == "remove" and len(numbers) == 1:
            del self.rows[numbers[0]:numbers[0] + 1]
        elif verb in ("or", "drop") and len(numbers) == 1 + (verb == "drop") and numbers[0] < len(self.rows):
            row = self.rows[numbers[0]]
            values = row.values + ("",) if verb == "or" else row.values[:numbers[1]] + row.values[numbers[1] + 1:]
            self.rows[numbers[0]] = scope_builder.Row(row.field, row.op, values)
        else:
            return False
        return True

    def cron_line(self):
        return self.cron_custom.strip() if self.cron_preset == "custom" else self.cron_preset

    def checked(self, now=None):
        """(changes, errors): the document fields the form sets, and {field: message} for what is wrong."""
        now = now or utc_now()
        errors, changes = {}, {}
        changes["name"] = self.name.strip()
        if not changes["name"]:
            errors["name"] = "give the configuration a name"
        try:
            changes["scope"] = self.scope()
        except ScopeError as error:
            errors["scope"] = str(error)
        changes["scheduled"] = self._schedule(now, errors)
        changes["max_parallel"] = _whole_number(self.max_parallel, 1, 20, "max_parallel", errors)
        if not self.families:
            errors["families"] = "choose at least one scan type"
        return changes, errors

    def _schedule(self, now, errors):
        if self.time_mode == "keep" and self.kept_schedule:
            return None
        if self.time_mode == "at":
            try:
                at = datetime.datetime.strptime(self.at_time, LOCAL_MINUTE).replace(tzinfo=datetime.timezone.utc)
            except ValueError:
                errors["at_time"] = "choose a date and time"
                return None
            if at <= now:
                errors["at_time"] = "choose a time in the future, or Now"
                return None
            return {"operationTime": rfc3339(at)}
        if self.time_mode == "cron":
            line = self.cron_line()
            try:
                croniter(line, now).get_next(datetime.datetime)
            except (CroniterBadCronError, ValueError, KeyError) as error:
                errors["cron"] = f"not a cron expression ({error or 'empty'}): use five fields, e.g. 0 3 * * *"
                return None
            return {"cronLine": line}
        if self.time_mode != "now":
            errors["time_mode"] = "choose when to scan"
            return None
        return {"operationTime": rfc3339(now)}

    def document(self, changes, stored=None):
        """The whole ScanConfig document: `stored` (or nothing) with the form's fields set."""
        document = copy.deepcopy(stored) if stored else {}
        for key in ("id", "revision"):
            document.pop(key, None)
        document["name"] = changes["name"]
        template = document.setdefault("scanTemplate", {})
        template["scope"] = changes["scope"]
        template["maxParallelScanners"] = changes["max_parallel"]
        asset_template = template.setdefault("assetScanTemplate", {})
        families = asset_template.setdefault("scanFamiliesConfig", {})
        for key, _ in FAMILY_CHOICES:
            families[key] = {**(families.get(key) or {}), "enabled": key in self.families}
        instance = asset_template.setdefault("scannerInstanceCreationConfig", {})
        instance["useSpotInstances"] = self.spot
        if changes["scheduled"] is not None:
            # A new schedule is meant to run: a one-off that had run and was disabled starts again.
            document["scheduled"] = changes["scheduled"]
            document["disabled"] = False
        return document


def _whole_number(text, low, high, name, errors):
    try:
        value = int(str(text).strip())
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        errors[name] = f"a whole number from {low} to {high}"
        return None
    return value
