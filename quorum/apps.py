from django.apps import AppConfig
from django.core import checks


class QuorumConfig(AppConfig):
    """The project itself as an app, for checks that belong to no domain app."""

    name = "quorum"

    def ready(self):
        from quorum.staticfiles import check_manifest

        # A deploy check only: migrate, collectstatic itself and the other commands run
        # without static files.
        checks.register(check_manifest, checks.Tags.staticfiles, deploy=True)
