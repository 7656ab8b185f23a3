"""A real SMTP server for tessera-delivery's tests (aiosmtpd), on 127.0.0.1 and a free port.

Usage: smtp_sink.py MODE [CERT KEY] [USER PASSWORD]
  MODE plain     no TLS
  MODE starttls  STARTTLS required before MAIL (aiosmtpd's require_starttls)
  MODE tls       implicit TLS from the first byte
With USER and PASSWORD, AUTH is required (and, as aiosmtpd insists, only over TLS).

Prints one JSON line {"port": N} once listening, then one JSON line per message received:
{"mail_from", "rcpt_tos", "subject", "from", "to", "body", "tls", "login"}.
"""

import asyncio
import email
import email.policy
import json
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def main():
    mode = sys.argv[1]
    rest = sys.argv[2:]
    context = None
    if mode in ("starttls", "tls"):
        cert, key, rest = rest[0], rest[1], rest[2:]
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
    credentials = (rest[0].encode(), rest[1].encode()) if len(rest) == 2 else None

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
            login = None
            if isinstance(session.auth_data, LoginPassword):
                login = session.auth_data.login.decode()
            print(
                json.dumps(
                    {
                        "mail_from": envelope.mail_from,
                        "rcpt_tos": envelope.rcpt_tos,
                        "subject": str(msg["subject"]),
                        "from": str(msg["from"]),
                        "to": str(msg["to"]),
                        "content_type": msg.get_content_type(),
                        "body": msg.get_content(),
                        # STARTTLS sets session.ssl; implicit TLS shows on the transport.
                        "tls": session.ssl is not None
                        or server.transport.get_extra_info("ssl_object") is not None,
                        "login": login,
                    }
                ),
                flush=True,
            )
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and credentials is not None
            and (auth_data.login, auth_data.password) == credentials
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    def factory():
        kwargs = {"hostname": "sink.test"}
        if mode == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        if credentials is not None:
            kwargs.update(
                authenticator=authenticator,
                auth_required=True,
                auth_require_tls=(mode == "starttls"),
            )
        return SMTP(Handler(), **kwargs)

    async def serve():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            factory, "127.0.0.1", 0, ssl=context if mode == "tls" else None
        )
        print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
        await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
