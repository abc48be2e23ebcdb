"""No credential literal anywhere in the repository: connections come from the environment only.

Scans every tracked (and untracked, not ignored) text file for the shapes credentials take: assignments to
password/secret/token variables, JSON "password" values, credentials inside URLs, private keys and cloud keys.
Placeholders (`change-me`, `${VAR}` interpolation, environment look-ups) are fine. A test that needs a
throwaway credential-shaped value marks the line with `# test-credential` (never a real secret).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PLACEHOLDER = re.compile(r"^(change-me|\$\{[^}]+\}|\$[A-Z_]+|<[^>]+>|\*+|x+|\.\.\.|)$", re.I)

PATTERNS = [
    ("private key", re.compile(r"-----BEGIN (RSA |EC |OPENSSH |)PRIVATE KEY-----")),
    ("AWS access key", re.compile(r"\bAKIA[0-9A-Z]{16}\b")),
    ("credentials in a URL", re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s:/@'\"]+:([^\s@/'\"{}$]+)@", re.I)),
    ("JSON password", re.compile(r"\"password\"\s*:\s*\"([^\"]*)\"", re.I)),
    ("password assignment", re.compile(
        r"\b[A-Z0-9_]*(PASSWORD|PASSWD|SECRET|TOKEN|API_KEY)\s*[:=]\s*['\"]?([A-Za-z0-9_\-+/=!@#%^&*.]{6,})",
        re.I)),
]

# Values that are not secrets but match a pattern's shape (names of variables, code expressions).
NOT_SECRET = re.compile(r"^([a-z_]+\.[a-z_]+|re\.|os\.|env|environ|get|None|True|False|params|conn|password|secrets\.|self\.|"
                        r"f?\"?\{|args\.|kwargs|settings|getpass|PGPASSWORD|AIRFLOW_|SHOPSTREAM_)", re.I)


def _files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.split()
    files = []
    for name in out:
        path = ROOT / name
        if path.is_file() and path.stat().st_size < 2_000_000 and path.suffix not in {".png", ".jpg", ".lock"}:
            files.append(path)
    return files


def find_secrets(text: str) -> list[tuple[str, str]]:
    hits = []
    text = "\n".join(line for line in text.splitlines() if "test-credential" not in line)
    for kind, pattern in PATTERNS:
        for m in pattern.finditer(text):
            value = m.group(m.lastindex) if m.lastindex else m.group(0)
            if kind in {"private key", "AWS access key"}:
                hits.append((kind, m.group(0)))
                continue
            if PLACEHOLDER.match(value) or NOT_SECRET.match(value):
                continue
            hits.append((kind, m.group(0)[:80]))
    return hits


def test_scanner_catches_the_shapes_it_claims():
    assert find_secrets('AIRFLOW_CONN_X=\'{"password":"hunter2hunter2"}\'')
    assert find_secrets("postgresql://shop:s3cretpw@db:5432/x")
    assert find_secrets("PGPASSWORD=s3cretpw9")
    assert find_secrets("-----BEGIN RSA PRIVATE KEY-----")
    assert not find_secrets('{"password":"change-me"}')
    assert not find_secrets("password = os.environ['AIRFLOW_ADMIN_PASSWORD']")
    assert not find_secrets("postgresql://${USER}:${PASSWORD}@db/x")


def test_no_credential_literals_in_the_repository():
    files = _files()
    assert len(files) > 20, "scanner found suspiciously few files"
    hits = []
    for path in files:
        if path == Path(__file__).resolve():
            continue  # this file's own examples
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for kind, snippet in find_secrets(text):
            hits.append(f"{path.relative_to(ROOT)}: {kind}: {snippet}")
    assert not hits, "credential-shaped literals found:\n" + "\n".join(hits)


def test_env_example_holds_placeholders_only():
    text = (ROOT / ".env.example").read_text()
    for m in re.finditer(r"\"password\"\s*:\s*\"([^\"]*)\"|PASSWORD=(\S*)", text):
        value = m.group(1) if m.group(1) is not None else m.group(2)
        assert value == "change-me", f".env.example holds a real-looking password: {m.group(0)}"
