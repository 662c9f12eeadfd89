"""Errors the API answers with: each carries its HTTP status and a `{message}` body."""


class ApiError(Exception):
    status = 400

    def __init__(self, message, body=None):
        super().__init__(message)
        self.message = message
        self.body = body or {"message": message}


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class MethodNotAllowed(ApiError):
    status = 405


class Conflict(ApiError):
    """409: the body is `<Type>Exists{message, <type>}` carrying the existing object."""

    status = 409


class PreconditionFailed(ApiError):
    status = 412
