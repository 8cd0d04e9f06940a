"""Staff log in with their user name or their email address."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend


def account_username(login):
    """The user name a login stands for: itself, unless it is no user name but exactly one
    user's email address (in any case), which stands for that user's name."""
    users = get_user_model()._default_manager
    if login and "@" in login and not users.filter(username=login).exists():
        by_email = list(users.filter(email__iexact=login)[:2])
        if len(by_email) == 1:
            return by_email[0].get_username()
    return login


class UsernameOrEmailBackend(ModelBackend):
    """Django's own backend, where a login may be a user's email address (the password check,
    and its timing, stay Django's)."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        return super().authenticate(
            request, username=account_username(username), password=password, **kwargs
        )


def lockout_username(request, credentials):
    """The name django-axes counts failed logins under (AXES_USERNAME_CALLABLE): the account's,
    so that a user name and every spelling of its email address share one count. Axes passes
    no credentials when it renders the lockout page; the form's login is in the request then."""
    field = settings.AXES_USERNAME_FORM_FIELD
    login = (credentials or request.POST).get(field)
    return account_username(login)
