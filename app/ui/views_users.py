"""Users & tokens (admins only): the people who sign in, and the API tokens scripts use.

Every write answers with the component it changed (users or tokens) for htmx, or
the whole page otherwise; a refused write says why in place, with 422. The rules
(who may be demoted or deleted, what a token needs) live in app.users and app.auth.
"""

from flask import abort, g, request

from app import auth, users
from app.ui import bp
from app.ui.htmx import render
from app.ui.security import admin_required


@bp.get("/admin/users", endpoint="users")
@admin_required
def users_page():
    return _answer("ui/_users.html")


@bp.post("/admin/users")
@admin_required
def create_user():
    form = request.form
    if form.get("password", "") != form.get("password_again", ""):
        return _answer("ui/_users.html", users_error="the two passwords differ", form=form), 422
    try:
        user = users.create_user(form.get("username", ""), form.get("password", ""), form.get("role", ""))
    except ValueError as error:
        return _answer("ui/_users.html", users_error=str(error), form=form), 422
    return _answer("ui/_users.html", users_notice=f"{user.username} can sign in now, as {user.role}.")


@bp.post("/admin/users/<int:user_id>/role")
@admin_required
def change_user_role(user_id):
    return _user_change(lambda: users.change_role(user_id, request.form.get("role", ""), g.user),
                        "{user.username} is {user.role} now.")


@bp.post("/admin/users/<int:user_id>/delete")
@admin_required
def delete_user(user_id):
    return _user_change(lambda: users.delete_user(user_id, g.user), "{user.username} was deleted.")


@bp.post("/admin/tokens")
@admin_required
def create_token():
    name, role = request.form.get("name", ""), request.form.get("role", "")
    if role not in auth.ROLES:  # scanner tokens are minted by the orchestrator, never by hand
        return _answer("ui/_tokens.html", tokens_error=f"choose one of {', '.join(auth.ROLES)}"), 422
    try:
        secret = auth.create_token(name, role)
    except ValueError as error:
        return _answer("ui/_tokens.html", tokens_error=str(error), token_name=name), 422
    response = _answer("ui/_tokens.html", new_token=(name.strip(), secret))
    response.headers["Cache-Control"] = "no-store"  # the secret must not outlive this answer
    return response


@bp.post("/admin/tokens/<int:token_id>/revoke")
@admin_required
def revoke_token(token_id):
    try:
        auth.revoke_token(token_id)
    except LookupError as error:
        abort(404, str(error))
    return _answer("ui/_tokens.html", tokens_notice="The token was revoked: scripts using it are refused now.")


def _user_change(change, notice):
    try:
        user = change()
    except LookupError as error:
        abort(404, str(error))
    except ValueError as error:
        return _answer("ui/_users.html", users_error=str(error)), 422
    return _answer("ui/_users.html", users_notice=notice.format(user=user))


def _answer(partial, **context):
    """The page (or, for htmx, the one component `partial`) with every user and token."""
    return render("ui/users.html", partial, users=users.all_users(), tokens=auth.people_tokens(),
                  roles=auth.ROLES, form=context.pop("form", {}), **context)
