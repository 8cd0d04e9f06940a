"""Static files: WhiteNoise's middleware for an async chain, and the `collectstatic` check."""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.staticfiles.storage import ManifestFilesMixin, staticfiles_storage
from django.core import checks
from whitenoise.middleware import WhiteNoiseMiddleware


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise's middleware, able to run in an async middleware chain.

    Under ASGI every sync-only middleware makes each request cross between the event loop and
    a thread twice more (Django adapts the chain around it); WhiteNoise's is sync-only, and
    sits near the top of the chain. This one serves static files as WhiteNoise does and
    otherwise passes the request on in whichever mode the chain runs, so a request crosses
    once, to run the view.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        super().__init__(get_response)
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.async_mode:
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request):
        if self.autorefresh:
            static_file = await sync_to_async(self.find_file)(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            return await sync_to_async(self.serve)(static_file, request)
        return await self.get_response(request)


def missing_manifest():
    """Why no page could render, or None: the manifest storage (DEBUG off) without a manifest.

    Every `{% static %}` looks its file up in the manifest that `collectstatic` writes, so
    without one each page is a 500. Said once at the start instead, with what to run.
    """
    if isinstance(staticfiles_storage, ManifestFilesMixin) and (
        staticfiles_storage.read_manifest() is None
    ):
        return (
            f"No static files manifest ({staticfiles_storage.manifest_name}) in "
            f"{settings.STATIC_ROOT}, so with DEBUG off every page would fail: run "
            "`python manage.py collectstatic --noinput` (after each upgrade, before starting "
            "the web processes)."
        )
    return None


def check_manifest(app_configs, **kwargs):
    """`manage.py check --deploy`: a deployment that skipped `collectstatic` is an error."""
    problem = missing_manifest()
    return [checks.Error(problem, id="quorum.E001")] if problem else []
