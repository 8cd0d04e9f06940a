"""Staff log in with their user name or their email address."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend


class UsernameOrEmailBackend(ModelBackend):
    """Django's own backend, where a login that is no user name but one user's email address
    stands for that user's name (the password check, and its timing, stay Django's)."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        users = get_user_model()._default_manager
        if username and "@" in username and not users.filter(username=username).exists():
            by_email = list(users.filter(email__iexact=username)[:2])
            if len(by_email) == 1:
                username = by_email[0].get_username()
        return super().authenticate(request, username=username, password=password, **kwargs)
