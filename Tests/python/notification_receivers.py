#!/usr/bin/python3
"""The receivers notification tests send to, on loopback, each written from its specification
alone (no CTBus code):

  smtp DIR     an SMTP server (Debian's aiosmtpd) that writes each mail it takes to DIR as
               NNNNNN.eml (the bytes as received) beside NNNNNN.json (envelope sender and
               recipients); while DIR/refuse exists it answers 451 to DATA, a temporary failure.
  webhook DIR SECRET
               an HTTP server that checks each POST as the Standard Webhooks specification says
               (webhook-id, webhook-timestamp within 5 minutes, webhook-signature v1 =
               base64(HMAC-SHA256(base64decode(SECRET without whsec_), "id.timestamp.body"))),
               writes a request that verifies to DIR as NNNNNN.json (headers and body) and
               answers 204, answers 401 to one that does not (DIR/rejected-NNNNNN.json); while
               DIR/status exists it answers the status code written there instead.

Each binds 127.0.0.1 port 0 and writes the port it got to DIR/port once it accepts connections.
Files are written under a temporary name and renamed, so a reader only sees whole files.
"""
import asyncio, base64, hashlib, hmac, itertools, json, os, socket, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def publish(directory, name, data):
    temporary = os.path.join(directory, name + ".tmp")
    with open(temporary, "wb") as out:
        out.write(data)
    os.rename(temporary, os.path.join(directory, name))


def smtp(directory):
    from aiosmtpd.smtp import SMTP

    sequence = itertools.count(1)

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            if os.path.exists(os.path.join(directory, "refuse")):
                return "451 Requested action aborted: try again later"
            number = next(sequence)
            publish(directory, "%06d.json" % number,
                    json.dumps({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos}).encode())
            publish(directory, "%06d.eml" % number, envelope.original_content)
            return "250 Message accepted for delivery"

    async def serve():
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(Handler(), hostname="receiver.test"), sock=sock)
        publish(directory, "port", str(sock.getsockname()[1]).encode())
        await server.serve_forever()

    asyncio.run(serve())


def webhook(directory, secret):
    key = base64.b64decode(secret[len("whsec_"):] if secret.startswith("whsec_") else secret)
    sequence = itertools.count(1)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {name.lower(): value for name, value in self.headers.items()}
            record = json.dumps({"headers": headers, "body": body.decode("utf-8", "replace")}).encode()
            number = next(sequence)
            status_file = os.path.join(directory, "status")
            if os.path.exists(status_file):
                with open(status_file) as f:
                    status = int(f.read().strip())
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
                return
            if self.verified(headers, body):
                publish(directory, "%06d.json" % number, record)
                self.send_response(204)
            else:
                publish(directory, "rejected-%06d.json" % number, record)
                self.send_response(401)
            self.send_header("content-length", "0")
            self.end_headers()

        def verified(self, headers, body):
            try:
                msg_id, timestamp, signatures = headers["webhook-id"], headers["webhook-timestamp"], headers["webhook-signature"]
                if abs(time.time() - int(timestamp)) > 300:
                    return False
            except (KeyError, ValueError):
                return False
            signed = ("%s.%s." % (msg_id, timestamp)).encode() + body
            expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
            return any(hmac.compare_digest(expected, given) for given in signatures.split(" "))

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    publish(directory, "port", str(server.server_address[1]).encode())
    server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "smtp":
        smtp(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "webhook":
        webhook(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: notification_receivers.py smtp DIR | webhook DIR SECRET")
