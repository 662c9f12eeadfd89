"""People who sign in to the web UI."""

import datetime
import secrets

import peewee
from werkzeug.security import check_password_hash, generate_password_hash

from app.auth import ROLES
from app.models import User

MIN_PASSWORD_LENGTH = 8


def create_user(username, password, role):
    """Store a new user; raise ValueError with a message a person can act on."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    if not username.strip():
        raise ValueError("the username must not be empty")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    try:
        return User.create(
            username=username.strip(),
            password_hash=generate_password_hash(password),
            role=role,
            created_at=datetime.datetime.now(datetime.timezone.utc),
        )
    except peewee.IntegrityError:
        raise ValueError(f"a user named {username!r} already exists") from None


def check_password(username, password):
    """Return the user when the password is right, else None."""
    user = User.get_or_none(User.username == username)
    if user is not None and check_password_hash(user.password_hash, password):
        return user
    return None


def first_admin(password=None):
    """Make the `admin` user at first start; return its password when it was generated here.

    `password` (VMCLARITY_ADMIN_PASSWORD) is used when given, and then nothing is returned:
    the operator knows it already. Once any admin exists this does nothing.
    """
    if User.select().where(User.role == "admin").exists():
        return None
    generated = None if password else secrets.token_urlsafe(12)
    create_user("admin", password or generated, "admin")
    return generated
