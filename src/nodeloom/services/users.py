"""People who sign in to the dashboard: users, password hashes, sessions and their CSRF tokens.

- Passwords are hashed with argon2id (argon2-cffi's parameters, RFC 9106's low-memory choice) and
  re-hashed at sign-in when those parameters change. An unknown email still costs one verification, so
  the answer's timing does not tell which emails exist.
- A session is a random token carried in a cookie. The row keeps only its HMAC digest under the server
  secret; the session's CSRF token is another HMAC of the same token, so it is never stored, differs per
  session and is checked in constant time.
- Failed sign-ins are counted per email and client address in a moving window (the `limits` library);
  past the allowance the address waits, whatever password it tries. Sign-ups are counted per address.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import CursorResult, delete, select
from sqlalchemy.exc import IntegrityError

from nodeloom.clock import Clock
from nodeloom.errors import ApiError, Conflict, NotFound, Unauthorized, ValidationFailed
from nodeloom.services.accounts import AccountService
from nodeloom.services.ids import new_id
from nodeloom.services.limits import RateLimited, SweptMemoryStorage
from nodeloom.storage.db import Database
from nodeloom.storage.models import Account
from nodeloom.storage.models_users import User, UserSession

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s.]+$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 hashes anything, but a megabyte "password" is only a way to burn CPU
DEMO_EMAIL = "demo@nodeloom.local"
#: an argon2id hash (same parameters as PasswordHasher's) of a password nobody knows: verified against
#: when the email is unknown, so that answer takes as long as a wrong password
_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$p360epTnDgPAXQcrPU4Tug$LoqQ/vmac34dNiVeowS/tKcMN4D2qo9TtlcQ5Jf50CA"


@dataclass(frozen=True)
class SessionInfo:
    """A live dashboard session, as the cookie's token resolves."""

    id: str
    user_id: str
    account_id: str
    expires_at: float


@dataclass(frozen=True)
class SignedIn:
    """What sign-in hands the route: the cookie's token (shown to nobody else) and the answer's body."""

    token: str
    session: SessionInfo
    body: dict[str, Any]


class LoginThrottle:
    """Attempts per key in a moving window: `check` before an attempt, `hit` to count one, `clear` to forget."""

    def __init__(self, *, attempts: int, window_seconds: int):
        self.item: RateLimitItem = RateLimitItemPerSecond(attempts, window_seconds)
        self.limiter = MovingWindowRateLimiter(SweptMemoryStorage())

    def check(self, key: str, *, what: str = "sign-in attempts") -> None:
        if self.limiter.test(self.item, key):
            return
        reset, _remaining = self.limiter.get_window_stats(self.item, key)
        wait = max(1, math.ceil(reset - time.time()))
        raise RateLimited(f"too many {what}; retry in {wait} s", retry_after=wait)

    def hit(self, key: str) -> None:
        self.limiter.hit(self.item, key)

    def clear(self, key: str) -> None:
        self.limiter.clear(self.item, key)


class UserService:
    def __init__(self, db: Database, *, accounts: AccountService, secret_key: str, clock: Clock,
                 session_ttl_seconds: float, login_attempts: int = 10, login_window_seconds: int = 900):
        self.db = db
        self.accounts = accounts
        self.clock = clock
        self.session_ttl_seconds = session_ttl_seconds
        self.hasher = PasswordHasher()
        self.throttle = LoginThrottle(attempts=login_attempts, window_seconds=login_window_seconds)
        self._session_key = hashlib.sha256(b"nodeloom-sessions\0" + secret_key.encode()).digest()
        self._csrf_key = hashlib.sha256(b"nodeloom-csrf\0" + secret_key.encode()).digest()

    # users ----------------------------------------------------------------------------------------
    def create_user(self, *, account_id: str, email: str, password: str, role: str = "owner") -> User:
        email = self.check_credentials(email, password)
        user = User(id=new_id("usr"), account_id=account_id, email=email, password_hash=self.hasher.hash(password),
                    role=role, created_at=self.clock.now())
        try:
            with self.db.write() as s:
                if s.get(Account, account_id) is None:
                    raise NotFound("account not found")
                if s.scalar(select(User.id).where(User.email == email)) is not None:
                    raise _email_taken()
                s.add(user)
        except IntegrityError as exc:  # a concurrent sign-up with the same email won the race
            raise _email_taken() from exc
        return user

    def signup(self, *, email: str, password: str, account_name: str, client: str) -> User:
        """A new account on the free plan and its owner (only when the operator enables sign-up)."""
        name = account_name.strip()
        details = [] if 1 <= len(name) <= 200 else [{"path": "accountName", "message": "must have 1 to 200 characters"}]
        try:
            self.check_credentials(email, password)
        except ValidationFailed as exc:
            details = [*details, *exc.extra["details"]]
        if details:
            raise _invalid(details)
        key = f"signup:{client}"
        self.throttle.check(key, what="sign-ups from this address")
        self.throttle.hit(key)  # every sign-up counts against the address's allowance
        return self.create_account_with_owner(account_name=name, email=email, password=password)

    def create_account_with_owner(self, *, account_name: str, email: str, password: str, plan: str = "free",
                                  credits: float = 0) -> User:
        """An account and the user who owns it; nothing is left behind when the user cannot be made."""
        email = self.check_credentials(email, password)
        with self.db.read() as s:
            if s.scalar(select(User.id).where(User.email == email)) is not None:
                raise _email_taken()
        account = self.accounts.create_account(name=account_name, plan=plan, credits=credits)
        try:
            return self.create_user(account_id=account.id, email=email, password=password)
        except ApiError:
            with self.db.write() as s:  # e.g. lost a race for the email
                s.execute(delete(Account).where(Account.id == account.id))
            raise

    def demo_user(self, account_id: str) -> dict[str, str]:
        """The demo account's person (`ensure_demo`'s hook): a fresh random password on every new demo."""
        password = secrets.token_urlsafe(12)
        with self.db.read() as s:
            existing = s.scalar(select(User).where(User.email == DEMO_EMAIL))
        if existing is None:
            self.create_user(account_id=account_id, email=DEMO_EMAIL, password=password)
        else:  # the demo was recreated (its credentials file went away): the user follows it
            with self.db.write() as s:
                user = s.get(User, existing.id)
                assert user is not None
                user.account_id = account_id
                user.password_hash = self.hasher.hash(password)
                s.execute(delete(UserSession).where(UserSession.user_id == user.id))
        return {"email": DEMO_EMAIL, "password": password}

    # sign-in and sessions --------------------------------------------------------------------------
    def login(self, *, email: str, password: str, client: str) -> SignedIn:
        """Check the password and open a session; every failure is the same 401."""
        email = email.strip().lower()
        key = f"login:{email}|{client}"
        self.throttle.check(key)
        with self.db.read() as s:
            user = s.scalar(select(User).where(User.email == email))
        if user is None or len(password) > MAX_PASSWORD or not self._verify(user.password_hash, password):
            if user is None and len(password) <= MAX_PASSWORD:
                self._verify(_DUMMY_HASH, password)
            self.throttle.hit(key)
            raise Unauthorized("wrong email or password", code="invalid_credentials")
        self.throttle.clear(key)
        rehash = self.hasher.check_needs_rehash(user.password_hash)
        with self.db.write() as s:
            row = s.get(User, user.id)
            if row is not None:
                row.last_login_at = self.clock.now()
                if rehash:
                    row.password_hash = self.hasher.hash(password)
        return self.start_session(user)

    def start_session(self, user: User) -> SignedIn:
        token = secrets.token_urlsafe(32)
        info = SessionInfo(id=new_id("sess"), user_id=user.id, account_id=user.account_id,
                           expires_at=self.clock.time() + self.session_ttl_seconds)
        with self.db.write() as s:
            s.add(UserSession(id=info.id, token_digest=self._digest(token), user_id=user.id,
                              account_id=user.account_id, created_at=self.clock.now(), expires_at=info.expires_at))
        return SignedIn(token=token, session=info, body=self.describe(info, token=token))

    def resolve(self, token: str) -> SessionInfo | None:
        """The live session a cookie names, or None when it is unknown, signed out or expired."""
        if not token or len(token) > 200:
            return None
        with self.db.read() as s:
            row = s.scalar(select(UserSession).where(UserSession.token_digest == self._digest(token)))
            if row is None or row.expires_at <= self.clock.time():
                return None
            return SessionInfo(id=row.id, user_id=row.user_id, account_id=row.account_id, expires_at=row.expires_at)

    def logout(self, token: str) -> None:
        with self.db.write() as s:
            s.execute(delete(UserSession).where(UserSession.token_digest == self._digest(token)))

    def csrf_token(self, token: str) -> str:
        return hmac.new(self._csrf_key, token.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, token: str, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(self.csrf_token(token), given or "")

    def describe(self, session: SessionInfo, *, token: str) -> dict[str, Any]:
        """`GET /auth/me`'s body: who, for which account, and the CSRF token their writes carry."""
        with self.db.read() as s:
            user = s.get(User, session.user_id)
            account = s.get(Account, session.account_id)
            if user is None or account is None:
                raise Unauthorized("sign in to continue")
            return {"user": {"id": user.id, "email": user.email, "role": user.role},
                    "account": {"id": account.id, "name": account.name, "plan": account.plan},
                    "csrfToken": self.csrf_token(token)}

    def sweep(self) -> int:
        """Delete expired sessions (a worker's periodic duty)."""
        with self.db.write() as s:
            result = cast(CursorResult[Any],
                          s.execute(delete(UserSession).where(UserSession.expires_at <= self.clock.time())))
        return int(result.rowcount or 0)

    async def sweep_async(self) -> None:
        await asyncio.to_thread(self.sweep)

    # helpers --------------------------------------------------------------------------------------
    def _digest(self, token: str) -> str:
        return hmac.new(self._session_key, token.encode(), hashlib.sha256).hexdigest()

    def _verify(self, digest: str, password: str) -> bool:
        try:
            return self.hasher.verify(digest, password)
        except (VerificationError, InvalidHashError):
            return False

    @staticmethod
    def check_credentials(email: str, password: str) -> str:
        """The normalised email, or 422 naming each bad field."""
        email = email.strip().lower()
        details = []
        if len(email) > 254 or not EMAIL_RE.match(email):
            details.append({"path": "email", "message": "must be an email address such as ada@example.com"})
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            details.append({"path": "password", "message": f"must have {MIN_PASSWORD} to {MAX_PASSWORD} characters"})
        if details:
            raise _invalid(details)
        return email


def _invalid(details: list[dict[str, str]]) -> ValidationFailed:
    """422 whose message names every problem, for clients that show only the message."""
    return ValidationFailed("; ".join(f"{d['path']} {d['message']}" for d in details), details)


def _email_taken() -> Conflict:
    return Conflict("a user with this email already exists", code="email_taken")


__all__ = ["DEMO_EMAIL", "LoginThrottle", "SessionInfo", "SignedIn", "UserService"]
