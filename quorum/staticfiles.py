"""WhiteNoise's middleware, able to run in an async middleware chain.

Under ASGI every sync-only middleware makes each request cross between the event loop and a
thread twice more (Django adapts the chain around it); WhiteNoise's is sync-only, and sits
near the top of the chain. This one serves static files as WhiteNoise does and otherwise
passes the request on in whichever mode the chain runs, so a request crosses once, to run
the view.
"""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from whitenoise.middleware import WhiteNoiseMiddleware


class StaticFilesMiddleware(WhiteNoiseMiddleware):
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
