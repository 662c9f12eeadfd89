"""People who sign in to the web UI."""

import datetime
import functools
import secrets

import peewee
from werkzeug.security import check_password_hash, generate_password_hash

from app.auth import ROLES
from app.db import is_postgres, write_transaction
from app.models import User

MIN_PASSWORD_LENGTH = 8
MAX_USERNAME_LENGTH = User.username.max_length


def create_user(username, password, role):
    """Store a new user; raise ValueError with a message a person can act on."""
    _check_role(role)
    username = username.strip()
    if not username:
        raise ValueError("the username must not be empty")
    if len(username) > MAX_USERNAME_LENGTH:
        raise ValueError(f"the username must have at most {MAX_USERNAME_LENGTH} characters")
    if not username.isprintable():  # control characters would forge lines in logs and listings
        raise ValueError("the username may hold only printable characters")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    try:
        return User.create(
            username=username,
            password_hash=generate_password_hash(password),
            role=role,
            created_at=datetime.datetime.now(datetime.timezone.utc),
        )
    except peewee.IntegrityError:
        raise ValueError(f"a user named {username!r} already exists") from None


def all_users():
    return list(User.select().order_by(User.username))


def change_role(user_id, role, acting_user):
    """Give the user `role`; an admin never demotes themselves, and the last admin stays one."""
    _check_role(role)
    with write_transaction():
        user = _user(user_id)
        if user.role == "admin" and role != "admin":
            _keep_an_admin(user, acting_user, "demote")
        user.role = role
        user.save()
    return user


def delete_user(user_id, acting_user):
    """Delete the user; nobody deletes themselves, and the last admin is never deleted."""
    with write_transaction():
        user = _user(user_id)
        if user.id == acting_user.id:
            raise ValueError("you cannot delete yourself: ask another admin")
        if user.role == "admin":
            _keep_an_admin(user, acting_user, "delete")
        user.delete_instance()
    return user


def _check_role(role):
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")


def _user(user_id):
    user = User.get_or_none(User.id == user_id)
    if user is None:
        raise LookupError("no user has that id")
    return user


def _keep_an_admin(user, acting_user, verb):
    """Refuse to take the admin role from `user` when `user` is the acting admin or the last admin."""
    if user.id == acting_user.id:
        raise ValueError(f"you cannot {verb} yourself: ask another admin")
    admins = User.select(User.id).where(User.role == "admin")
    if is_postgres():
        # Two admins removing each other at once: the second waits, then sees one admin left.
        admins = admins.for_update()
    if [row.id for row in admins] == [user.id]:
        raise ValueError(f"{user.username!r} is the last admin and cannot be {verb}d: make another admin first")


def check_password(username, password):
    """Return the user when the password is right, else None."""
    user = User.get_or_none(User.username == username)
    # Always one hash check: answering an unknown name at once would tell which names exist.
    matches = check_password_hash(user.password_hash if user else _dummy_hash(), password)
    return user if user is not None and matches else None


@functools.cache
def _dummy_hash():
    """A hash of the current method and cost that no password matches, made once per process."""
    return generate_password_hash(secrets.token_urlsafe(16))


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
