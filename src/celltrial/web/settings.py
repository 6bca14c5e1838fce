"""Settings of the web app's sessions, logins and cookies: :class:`WebSettings`.

``create_app(..., settings=WebSettings(...))`` takes them from code; otherwise
:meth:`WebSettings.from_env` reads them from the environment (docs/web.md, "Settings"):

| variable | default | what |
|---|---|---|
| ``CELLTRIAL_SESSION_IDLE_MINUTES`` | 30 | a session unused this long is logged out |
| ``CELLTRIAL_SESSION_LIFETIME_HOURS`` | 12 | a session this old is logged out, used or not |
| ``CELLTRIAL_SECURE_COOKIES`` | off | ``1``/``true``/``yes``: served behind TLS: cookies ``Secure``, HSTS |
| ``CELLTRIAL_LOGIN_LOCKOUT_FAILURES`` | 10 | consecutive failed logins that lock an account |
| ``CELLTRIAL_LOGIN_ADDRESS_FAILURES`` | 50 | failed logins per client address and window before 429 |
| ``CELLTRIAL_LOGIN_ADDRESS_WINDOW_MINUTES`` | 15 | that window |
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from celltrial.errors import InvalidValue
from celltrial.store.audit import now
from celltrial.store.sessions import LoginPolicy

IDLE_ENV = "CELLTRIAL_SESSION_IDLE_MINUTES"
LIFETIME_ENV = "CELLTRIAL_SESSION_LIFETIME_HOURS"
SECURE_ENV = "CELLTRIAL_SECURE_COOKIES"
LOCKOUT_ENV = "CELLTRIAL_LOGIN_LOCKOUT_FAILURES"
ADDRESS_ENV = "CELLTRIAL_LOGIN_ADDRESS_FAILURES"
WINDOW_ENV = "CELLTRIAL_LOGIN_ADDRESS_WINDOW_MINUTES"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class WebSettings:
    """Session timeouts, lockout and throttling limits, cookie security, and the clock."""

    idle_timeout: dt.timedelta = dt.timedelta(minutes=30)
    session_lifetime: dt.timedelta = dt.timedelta(hours=12)
    secure_cookies: bool = False
    """True when the app is served behind TLS: cookies get ``Secure``, responses HSTS."""
    login: LoginPolicy = field(default_factory=LoginPolicy)
    clock: Callable[[], dt.datetime] = now
    """The current instant (aware, UTC); tests pass a fake clock."""

    def now(self) -> dt.datetime:
        """The current instant by :attr:`clock`."""
        return self.clock()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebSettings:
        """The settings of ``environ`` (default ``os.environ``); unset ones keep defaults."""
        env = os.environ if environ is None else environ
        base = cls()
        policy = base.login
        return replace(
            base,
            idle_timeout=_duration(env, IDLE_ENV, base.idle_timeout, dt.timedelta(minutes=1)),
            session_lifetime=_duration(env, LIFETIME_ENV, base.session_lifetime,
                                       dt.timedelta(hours=1)),
            secure_cookies=_flag(env, SECURE_ENV, base.secure_cookies),
            login=LoginPolicy(
                lockout_after=_count(env, LOCKOUT_ENV, policy.lockout_after),
                address_limit=_count(env, ADDRESS_ENV, policy.address_limit),
                address_window=_duration(env, WINDOW_ENV, policy.address_window,
                                         dt.timedelta(minutes=1))))


def _number(env: Mapping[str, str], name: str) -> float | None:
    text = env.get(name, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise InvalidValue(f"Invalid `{name}`: got `{text!r}`, must be a number above 0")
    return value


def _duration(env: Mapping[str, str], name: str, default: dt.timedelta,
              unit: dt.timedelta) -> dt.timedelta:
    value = _number(env, name)
    return default if value is None else unit * value


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    value = _number(env, name)
    if value is None:
        return default
    if not value.is_integer():
        raise InvalidValue(f"Invalid `{name}`: got `{env[name]!r}`, must be a whole number "
                           "above 0")
    return int(value)


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    text = env.get(name)
    if text is None:
        return default
    if text.strip().lower() in _TRUE:
        return True
    if text.strip().lower() in _FALSE:
        return False
    raise InvalidValue(f"Invalid `{name}`: got `{text!r}`, must be 1/true/yes or 0/false/no")
