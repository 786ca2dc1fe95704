"""Which notifications a finished run sends: Rancher's `shouldNotify` and recipient matching, on plain data.

Rancher v2 (pipelineexecution.go `shouldNotify` / `getToSendRecipients`):
- nothing without `recipients`;
- a run notifies when its final state is one of `condition`, or when
  `condition` has `Changed` and the previous run's final state differs
  from this one's;
- a recipient's `notifier` names a notifier by its name; Rancher's
  `<cluster>:<notifier-id>` form is matched by the part after the colon.

Where Slipway differs, and why: Rancher compared with run N-1 only, and
only if it had finished; with several runs at once that run may still be
going, so Slipway compares with the latest run *before this one* (lower run
number, any branch, as Rancher) that had finished by the time this one is
looked at. No previous finished run: `Changed` does not fire (Rancher: the
same). A recipient naming no notifier of the project, or unfit for its
kind, is not silently dropped (Rancher's way): it becomes a failed
delivery whose error names its field path, shown with the run.
"""
from __future__ import annotations

from dataclasses import dataclass

from devops.notifications.kinds import NOTIFIERS
from devops.pipeline.config import notifier_name

CHANGED = "Changed"


def should_notify(notification: dict, state: str, previous_state: str | None) -> bool:
    """`notification` is the config's JSON (`recipients`, `condition`); `previous_state` None = no finished run before."""
    if not notification or not notification.get("recipients"):
        return False
    condition = list(notification.get("condition") or ())
    if state in condition:
        return True
    return CHANGED in condition and previous_state is not None and previous_state != state


@dataclass(frozen=True)
class Planned:
    index: int          # the recipient's index in the file
    notifier: str       # the matched notifier's name ("" when none matched)
    kind: str
    recipient: str
    problem: str = ""   # set: recorded as failed at once, never sent


def plan(notification: dict, notifiers: dict[str, str]) -> list[Planned]:
    """One Planned per recipient; `notifiers` is {name: kind} of the project."""
    out: list[Planned] = []
    for i, pairs in enumerate(notification.get("recipients") or ()):
        entry = dict(pairs) if not isinstance(pairs, dict) else pairs
        recipient = str(entry.get("recipient", ""))
        wanted = str(entry.get("notifier", ""))
        path = f"notification.recipients[{i}].notifier"
        name = notifier_name(wanted)
        if not name:
            out.append(Planned(i, "", "", recipient, f"{path}: a recipient needs `notifier`, "
                                                      "the name of one of the project's notifiers"))
            continue
        kind = notifiers.get(name) or notifiers.get(wanted.strip())
        if kind is None:
            known = ", ".join(sorted(notifiers)) or "none yet"
            out.append(Planned(i, "", "", recipient,
                               f"{path}: no notifier named {name!r} in this project (known: {known})"))
            continue
        name = name if name in notifiers else wanted.strip()
        problem = NOTIFIERS.load(kind).check_recipient(recipient)
        if problem:
            out.append(Planned(i, name, kind, recipient, f"notification.recipients[{i}].recipient: {problem}"))
            continue
        out.append(Planned(i, name, kind, recipient))
    return out
