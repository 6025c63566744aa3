"""The aiosmtpd reference of bench/smtp-throughput.sh: a Python asyncio SMTP server
that accepts every mail and stores nothing (no disk, no reply mail).

    python3 bench/aiosmtpd_server.py PORT
"""
import asyncio
import sys

from aiosmtpd.smtp import SMTP


class Accept:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


async def main(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Accept(), hostname="aiosmtpd.localhost"), "127.0.0.1", port
    )
    async with server:
        await server.serve_forever()


asyncio.run(main(int(sys.argv[1])))
