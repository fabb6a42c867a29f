"""Password hashes of staff accounts: argon2id (argon2-cffi's defaults, RFC 9106's low-memory profile).

A hash takes about 0.1 s of CPU and 64 MiB of memory, by design; so it runs in a worker thread (the
event loop keeps serving) and only a few at a time per process, so that a burst of sign-ins cannot
take the memory of the machine.
"""

from __future__ import annotations

import asyncio
import functools
import weakref

import argon2

MIN_LENGTH = 12
MAX_LENGTH = 1024  # a passphrase fits; a megabyte "password" is not hashed
HASHING_AT_ONCE = 2

_hasher = argon2.PasswordHasher()
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


class PasswordRefused(ValueError):
    """A password that is too short or too long; the message says why."""


def check_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise PasswordRefused(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordRefused(f"a password has at most {MAX_LENGTH} characters")
    return password


def hash_password(password: str) -> str:
    """The argon2id hash (with its salt and parameters) of a password that passes `check_password`."""
    return _hasher.hash(check_password(password))


@functools.cache
def _stand_in() -> str:
    # Checked against when the login is unknown, so that an unknown login costs as long as a wrong password.
    return _hasher.hash("no such account, but the same work")


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _stand_in(), password[:MAX_LENGTH]) and password_hash is not None
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches `password_hash`; None (no such account) costs the same and is False."""
    slots = _slots.setdefault(asyncio.get_running_loop(), asyncio.Semaphore(HASHING_AT_ONCE))
    async with slots:
        return await asyncio.to_thread(_verify, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's (then it is replaced on sign-in)."""
    return _hasher.check_needs_rehash(password_hash)
