"""Notifications of finished runs (the pipeline file's `notification:` block, Rancher's semantics).

- `kinds.NOTIFIERS`: the notifier kinds (`email`, `webhook`, `slack`), one KindTable;
  each kind's module follows `base.Notifier`'s contract (plain data, no models).
- `plan.should_notify` / `plan.plan`: which runs notify whom (Rancher's rules).
- `message.build_message`: Rancher's default text or the file's own, as plain text.
- `safehttp.post_json`: the one HTTP sender (address checks, pinned address, timeouts,
  bounded reads).

The rows (`devops.models.Notifier`, `NotificationDelivery`) and the durable
delivery loop (`devops/controller/notifications.py`, `tick_notify`) live
above this package; it never imports models. `mail` uses Django's mail
backend (django.core.mail), nothing else of Django but its e-mail validator.
"""
