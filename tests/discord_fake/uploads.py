"""Files users attach to slash commands, served from the fake's own loopback "CDN" like Discord's."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from aiohttp import web

from .state import Payload

ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024  # advertised to the bot as `attachment_size_limit` (no boosts)
ATTACHMENT_ROUTE = r"/ephemeral-attachments/{channel:\d+}/{attachment:\d+}/{filename}"


@dataclass(frozen=True)
class FakeUpload:
    """A file a user picks for an attachment option of a slash command."""

    filename: str
    data: bytes = field(repr=False)
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class HostedAttachment:
    """An upload stored on the fake's CDN: what an attachment option's value refers to."""

    id: int
    channel_id: int
    upload: FakeUpload
    url: str

    def payload(self) -> Payload:
        """The attachment object in `data.resolved.attachments`."""
        return {
            "id": str(self.id),
            "filename": self.upload.filename,
            "size": len(self.upload.data),
            "content_type": self.upload.content_type,
            "url": self.url,
            "proxy_url": self.url,
            "ephemeral": True,
            "flags": 0,
        }


class UploadHost:
    """Hosts user uploads at `ATTACHMENT_ROUTE` on the fake's server (GET; 404 for anything else)."""

    def __init__(self) -> None:
        self.origin = ""  # set by FakeDiscord.start: http://127.0.0.1:<port>
        self.files: dict[int, HostedAttachment] = {}

    def routes(self) -> list[web.RouteDef]:
        return [web.get(ATTACHMENT_ROUTE, self.serve)]

    def host(self, attachment_id: int, channel_id: int, upload: FakeUpload) -> HostedAttachment:
        """Store `upload` as the Discord client does before sending the command; refuse oversized files."""
        if len(upload.data) > ATTACHMENT_SIZE_LIMIT:
            raise ValueError(
                f"{upload.filename} is {len(upload.data)} bytes: Discord refuses uploads over the "
                f"attachment_size_limit of {ATTACHMENT_SIZE_LIMIT} bytes"
            )
        path = f"/ephemeral-attachments/{channel_id}/{attachment_id}/{quote(upload.filename)}"
        hosted = HostedAttachment(attachment_id, channel_id, upload, self.origin + path)
        self.files[attachment_id] = hosted
        return hosted

    async def serve(self, request: web.Request) -> web.Response:
        match = request.match_info
        hosted = self.files.get(int(match["attachment"]))
        if hosted is None or (hosted.channel_id, hosted.upload.filename) != (int(match["channel"]), match["filename"]):
            raise web.HTTPNotFound()
        return web.Response(body=hosted.upload.data, headers={"Content-Type": hosted.upload.content_type})
