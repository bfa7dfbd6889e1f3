"""Run profiles: one switch that sizes every tutorial.

A profile changes *sizes* (number of examples, epochs, image sizes), never
which code runs, so the fast ``smoke`` profile that the tests use exercises
exactly the code a learner runs in ``docs`` or ``full``.

* ``smoke``: seconds per tutorial, tiny data, 1-2 epochs. Used by pytest.
* ``docs``: the documentation site's profile. Meaningful results offline in a
  few minutes on 2 CPU cores. This is the default.
* ``full``: the real-scale run (GPU, internet: ImageNet weights, big datasets).

The profile is chosen, first match wins, by [`set_profile`][dl4keras.profiles.set_profile], a
``--profile NAME`` (or ``--profile=NAME``) argument of the running script, the
``DL4KERAS_PROFILE`` environment variable, and finally the default ``docs``.

Examples:
    ```python
    from dl4keras import profiles

    epochs = profiles.choose(smoke=1, docs=20, full=100)
    print(f"profile={profiles.current()} epochs={epochs}")
    ```
"""

from __future__ import annotations

import os
import sys

PROFILES = ("smoke", "docs", "full")
DEFAULT_PROFILE = "docs"
ENV_VAR = "DL4KERAS_PROFILE"

_explicit: str | None = None
_env_before: str | None = None
"""`DL4KERAS_PROFILE` before `set_profile` exported its value (restored by `set_profile(None)`)."""


def validate(name: str) -> str:
    """Returns `name` if it is a known profile, else raises `ValueError`."""
    if not isinstance(name, str) or name.strip().lower() not in PROFILES:
        raise ValueError(
            f"Unknown profile {name!r}. Expected one of {', '.join(PROFILES)} "
            f"(set it with --profile NAME or the {ENV_VAR} environment variable)."
        )
    return name.strip().lower()


def _from_argv(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--profile":
            if i + 1 >= len(argv):
                raise ValueError(f"--profile needs a value: one of {', '.join(PROFILES)}.")
            return argv[i + 1]
        if arg.startswith("--profile="):
            return arg.split("=", 1)[1]
    return None


def set_profile(name: str | None) -> None:
    """Sets the profile for this process (`None` returns to the default lookup).

    Also exports it in `DL4KERAS_PROFILE` so subprocesses inherit it;
    `set_profile(None)` gives `DL4KERAS_PROFILE` back the value it had before.

    Examples:
        >>> import os
        >>> from dl4keras import profiles
        >>> os.environ["DL4KERAS_PROFILE"] = "smoke"  # as in `DL4KERAS_PROFILE=smoke python ...`
        >>> profiles.set_profile("full")
        >>> profiles.current(), os.environ["DL4KERAS_PROFILE"]  # subprocesses inherit it
        ('full', 'full')
        >>> profiles.set_profile(None)  # back to --profile, $DL4KERAS_PROFILE or "docs"
        >>> profiles.current(), os.environ["DL4KERAS_PROFILE"]
        ('smoke', 'smoke')
    """
    global _explicit, _env_before
    if name is None:
        if _explicit is not None and os.environ.get(ENV_VAR) == _explicit:
            if _env_before is None:
                os.environ.pop(ENV_VAR, None)
            else:
                os.environ[ENV_VAR] = _env_before
        _explicit = _env_before = None
        return
    name = validate(name)
    if _explicit is None:
        _env_before = os.environ.get(ENV_VAR)
    _explicit = name
    os.environ[ENV_VAR] = _explicit


def current() -> str:
    """Returns the active profile name: ``"smoke"``, ``"docs"`` or ``"full"``.

    Examples:
        >>> import os
        >>> from dl4keras import profiles
        >>> os.environ["DL4KERAS_PROFILE"] = "smoke"  # as in `DL4KERAS_PROFILE=smoke python ...`
        >>> profiles.current()
        'smoke'
    """
    if _explicit is not None:
        return _explicit
    from_argv = _from_argv(sys.argv[1:])
    if from_argv is not None:
        return validate(from_argv)
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return validate(from_env)
    return DEFAULT_PROFILE


def choose(*, smoke, docs, full):
    """Returns the value given for the active profile.

    Args:
        smoke: value used in the ``smoke`` profile.
        docs: value used in the ``docs`` profile.
        full: value used in the ``full`` profile.

    Returns:
        One of the three values.

    Examples:
        >>> from dl4keras import profiles
        >>> profiles.set_profile("smoke")
        >>> profiles.choose(smoke=1, docs=10, full=100)
        1
        >>> profiles.set_profile(None)
    """
    return {"smoke": smoke, "docs": docs, "full": full}[current()]
