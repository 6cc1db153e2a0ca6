"""Keep secrets out of logs, caches, reports and error messages."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

#: things that look like API keys even when we were not told about them
_KEY_PATTERN = re.compile(r"\b(sk|rk|pk)-[A-Za-z0-9_\-]{8,}")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+")
MASK = "***"


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        # longest first, so a key that contains another is masked whole
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def text(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
        return _KEY_PATTERN.sub(lambda m: m.group(1) + "-" + MASK, text)

    def url(self, url: str) -> str:
        """The URL without user:password and with secrets masked."""
        parts = urlsplit(url)
        if parts.username or parts.password:
            host = parts.hostname or ""
            netloc = host + (f":{parts.port}" if parts.port else "")
            parts = parts._replace(netloc=netloc)
        return self.text(urlunsplit(parts))
