"""Serve the scriptable test server from the command line (every model echoes by default).

python -m apex.testing --port 8765
"""

from __future__ import annotations

import argparse
import sys
import time

from apex.testing import TestServer, roles


def main() -> None:
    """Run the server until interrupted; models named ``judge*`` and ``critic*`` answer in JSON."""
    parser = argparse.ArgumentParser(description="APEX's OpenAI-compatible test server")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    try:
        server = TestServer(port=args.port)
    except OSError as exc:  # the port is taken (or not ours to bind): one line, no traceback
        sys.stderr.write(
            f"error: cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}; "
            "stop what holds it or give --port N\n"
        )
        raise SystemExit(1) from None
    for name in ("judge", "judge2"):
        server.default(name, roles.judge("a synthesized answer"))
    server.default("critic", roles.critic())
    with server:
        print(f"serving {server.base_url} (Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
