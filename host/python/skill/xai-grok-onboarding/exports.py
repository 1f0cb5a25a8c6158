"""The seed skill's function table (``xai-grok-onboarding``), over the ``provider_host``
package: the sandboxed xAI plugin in-process, on the same state directory, tenant and
secret backend as the ``provider-host`` CLI.

Each function returns a plain dict: ``ok: True`` and the CLI's keys, or ``ok: False``,
``error`` (the code), ``message`` and ``action``. No token ever appears in one.

    import json, sys
    sys.path.insert(0, '/path/to/skills/xai-grok-onboarding')
    from exports import start
    print(json.dumps(start(), indent=2))
"""

from provider_host import (  # noqa: F401  (the table this skill exports)
    chat,
    configure,
    doctor,
    key_delete,
    key_set,
    key_status,
    logout,
    models,
    poll,
    refresh,
    start,
    status,
    usage,
)

__all__ = [
    "status",
    "start",
    "poll",
    "logout",
    "refresh",
    "models",
    "chat",
    "usage",
    "key_set",
    "key_status",
    "key_delete",
    "doctor",
    "configure",
]
